"""The issuing side of a proxy: the user's credential, where it lives and how to unlock it.

An Issuer is resolved once from explicit arguments (the CLI gathers them from its
options); the credential itself is loaded only when a proxy is made or a request
signed, so an encrypted key's passphrase is asked only when it is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from csctl.errors import CredentialError
from csctl.proxy.actions import make_proxy_file, sign_request_file
from csctl.proxy.chain import default_trust_dir
from csctl.proxy.credentials import Passphrase, default_cert_paths, load_credential, passphrase_from_fd
from csctl.proxy.files import refuse_overwrite
from csctl.proxy.issue import make_proxy
from csctl.proxy.model import DEFAULT_BITS, IssueOptions, NewProxy, SignedProxy

Prompt = Callable[[str], str]  # getpass.getpass: the command's terminal


def terminal_passphrase(key: Path, prompt: Prompt) -> Passphrase:
    """Ask for ``key``'s passphrase with ``prompt`` (only when the key is encrypted)."""

    def ask() -> bytes:
        try:
            # surrogateescape: bytes the terminal could not decode go back as they were typed
            return prompt(f"Enter pass phrase for {key}: ").encode("utf-8", "surrogateescape")
        except EOFError as exc:
            raise CredentialError(
                f"{key}: private key is encrypted and no passphrase was given",
                hint="type it on a terminal or use --passphrase-fd",
            ) from exc

    return ask


def protect_credential(outputs: Mapping[str, Path | None], cert: Path | None, key: Path | None) -> None:
    """Refuse (InputError) any output (option name -> path) that is the user's certificate or
    key: ``cert`` and ``key`` as given, else their defaults. Nothing is read or asked."""
    default_cert, default_key = default_cert_paths()
    refuse_overwrite(outputs, {"--cert": cert or default_cert, "--key": key or default_key})


@dataclass(frozen=True)
class Issuer:
    """The user's credential and the proxy to make of it."""

    cert: Path
    key: Path
    options: IssueOptions
    passphrase: Passphrase
    trust_dir: Path | None

    @classmethod
    def resolve(
        cls,
        options: IssueOptions,
        *,
        prompt: Prompt,
        cert: Path | None = None,
        key: Path | None = None,
        passphrase_fd: int | None = None,
        cert_dir: Path | None = None,
    ) -> Issuer:
        """Fill in what was not given: ``~/.globus/usercert.pem`` and ``userkey.pem`` (or
        $X509_USER_CERT/KEY), the default trust directory, and the passphrase: read from
        ``passphrase_fd`` if given, else asked with ``prompt`` when the key is encrypted."""
        default_cert, default_key = default_cert_paths()
        key = key or default_key
        return cls(
            cert=cert or default_cert,
            key=key,
            options=options,
            passphrase=passphrase_from_fd(passphrase_fd)
            if passphrase_fd is not None
            else terminal_passphrase(key, prompt),
            trust_dir=cert_dir or default_trust_dir(),
        )

    def make_proxy_file(self, out: Path, bits: int = DEFAULT_BITS) -> NewProxy:
        """grid-proxy-init: a proxy of this credential written to ``out`` (0600, atomically)."""
        return make_proxy_file(
            self.cert,
            self.key,
            out,
            self.options,
            bits=bits,
            passphrase=self.passphrase,
            trust_dir=self.trust_dir,
        )

    def sign_request_file(self, csr: Path) -> tuple[bytes, SignedProxy]:
        """Sign the CSR in ``csr``: (PEM of proxy cert + chain to send back, details)."""
        return sign_request_file(
            csr, self.cert, self.key, self.options, passphrase=self.passphrase, trust_dir=self.trust_dir
        )

    def maker(self, bits: int = DEFAULT_BITS) -> Callable[[], NewProxy]:
        """A proxy maker for apply_refresh: loads the credential only when called."""

        def make() -> NewProxy:
            credential = load_credential(self.cert, self.key, self.passphrase)
            return make_proxy(credential, self.options, bits=bits, trust_dir=self.trust_dir)

        return make
