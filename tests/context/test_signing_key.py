"""The pool signing key is read as HTCondor's read_secure_file reads it, and more warily:
a link, a FIFO, a device, an oversized file or another user's file is refused with one
line naming the path, and a hint saying what to do."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from csctl.config import parse_config
from csctl.context.tokens import SigningKey, read_signing_key, scramble
from csctl.engine.services import Services
from csctl.errors import CredentialError, ExitCode

MAX_KEY_BYTES = 64 * 1024


def write_key(directory: Path, raw: bytes = b"pool-secret", name: str = "POOL", mode: int = 0o600) -> Path:
    path = directory / name
    path.write_bytes(scramble(raw))
    path.chmod(mode)
    return path


def refusal(path: Path) -> CredentialError:
    with pytest.raises(CredentialError) as info:
        read_signing_key(path)
    assert info.value.exit_code == ExitCode.CREDENTIAL
    assert "\n" not in info.value.message
    return info.value


def test_a_private_regular_file_is_read_and_named_by_its_file_name(tmp_path):
    assert read_signing_key(write_key(tmp_path)) == SigningKey("POOL", b"pool-secret")


def test_a_symbolic_link_is_refused_not_resolved(tmp_path):
    # HTCondor finds a key by its file name in passwords.d and never resolves the name;
    # reading through a link would mint tokens whose kid names a different file than the
    # one whose bytes signed them
    target = write_key(tmp_path, name="real-key")
    link = tmp_path / "POOL"
    link.symlink_to(target)
    error = refusal(link)
    assert error.message == f"{link}: signing key is a symbolic link"
    assert error.hint == f"make {link} the key file itself, not a link: HTCondor finds the key by that name"


def test_a_dangling_link_is_refused_as_a_link(tmp_path):
    link = tmp_path / "POOL"
    link.symlink_to(tmp_path / "gone")
    assert refusal(link).message == f"{link}: signing key is a symbolic link"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "POOL"
    os.mkfifo(fifo, 0o600)

    def unblock() -> None:  # before the fix the read waited for a writer: fail, not hang
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        os.write(fd, scramble(b"late"))
        os.close(fd)

    timer = threading.Timer(3.0, unblock)
    timer.daemon = True
    timer.start()
    error = refusal(fifo)
    timer.cancel()
    assert error.message == f"{fifo}: signing key is a FIFO, not a regular file"
    assert error.hint == "give pool.signing_key the key file itself (passwords.d/POOL)"


def test_a_device_or_directory_is_refused(tmp_path):
    assert (
        refusal(Path("/dev/zero")).message
        == "/dev/zero: signing key is a character device, not a regular file"
    )
    keys = tmp_path / "passwords.d"
    keys.mkdir(mode=0o700)
    assert refusal(keys).message == f"{keys}: signing key is a directory, not a regular file"


def test_an_oversized_file_is_refused_unread(tmp_path):
    path = write_key(tmp_path, b"k" * (MAX_KEY_BYTES + 1))
    assert refusal(path).message == f"{path}: signing key is larger than 64 kB ({MAX_KEY_BYTES + 1} bytes)"
    assert (
        read_signing_key(write_key(tmp_path, b"k" * MAX_KEY_BYTES, name="BIG")).secret == b"k" * MAX_KEY_BYTES
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_key_owned_by_another_user_is_refused(tmp_path):
    path = write_key(tmp_path)
    os.chown(path, 65534, -1)
    error = refusal(path)
    assert error.message == f"{path}: signing key is owned by uid 65534, not by this user or root"
    assert error.hint == f"chown {os.geteuid()} {path}"


def test_group_or_other_access_is_still_refused(tmp_path):
    path = write_key(tmp_path, mode=0o640)
    error = refusal(path)
    assert error.message == f"{path}: signing key is accessible by group or others (mode 0640)"
    assert error.hint == f"chmod 600 {path}"


def test_services_pass_the_refusal_on(tmp_path):
    link = tmp_path / "POOL"
    link.symlink_to(write_key(tmp_path, name="real-key"))
    config = parse_config(f'[pool]\nname = "p"\ncollector = "127.0.0.1:1"\nsigning_key = "{link}"\n')
    with pytest.raises(CredentialError) as info:
        Services(config).signing_key("boot VMs")
    assert info.value.message == f"{link}: signing key is a symbolic link"
    assert info.value.exit_code == ExitCode.CREDENTIAL == 7
