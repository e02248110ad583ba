"""The options of ``csctl delegate-proxy``, kept apart so the command module reads as what it does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
P = click.Path(path_type=Path)

# in the order --help lists them
_OPTIONS: list[Callable[[Any], Any]] = [
    click.option(
        "--cert",
        type=P,
        envvar="X509_USER_CERT",
        show_envvar=True,
        help="Issuer certificate, or a proxy file to make a proxy of a proxy."
        " [default: ~/.globus/usercert.pem]",
    ),
    click.option(
        "--key",
        type=P,
        envvar="X509_USER_KEY",
        show_envvar=True,
        help="Issuer private key (mode 0600 or 0400). [default: ~/.globus/userkey.pem]",
    ),
    click.option(
        "--out",
        type=P,
        help="Proxy file to write. [default: $X509_USER_PROXY, else /tmp/x509up_u<uid>; with --sign:"
        " stdout; with --refresh-jobs: a private temporary file]",
    ),
    click.option(
        "--valid",
        "lifetime",
        default="12:00",
        show_default=True,
        metavar="H:M",
        help="Lifetime H:M; capped, with a warning, at the issuer's remaining life.",
    ),
    click.option(
        "--limited", is_flag=True, help="Make a limited proxy (gatekeepers refuse it for job submission)."
    ),
    click.option(
        "--path-length",
        type=click.IntRange(min=0, max=2**31 - 1),  # the grid tools read it into a C int
        help="Allow at most N further proxies below this one. [default: unlimited]",
    ),
    click.option(
        "--bits",
        type=click.IntRange(min=2048, max=16384),  # past 16384 bits the key takes minutes to make
        default=2048,
        show_default=True,
        help="Size of the new RSA key.",
    ),
    click.option(
        "--passphrase-fd",
        metavar="N",  # a string, checked by csctl.proxy.credentials.parse_fd into one-line errors
        help="Read the key's passphrase from file descriptor N (else asked on the terminal).",
    ),
    click.option(
        "--cert-dir",
        type=P,
        envvar="X509_CERT_DIR",
        show_envvar=True,
        help="Trusted CA directory. [default: ~/.globus/certificates or /etc/grid-security/certificates]",
    ),
    click.option(
        "--require-trust",
        is_flag=True,
        help="Refuse (exit 7) when no CA directory is found, instead of warning that the CA is not checked.",
    ),
    click.option(
        "--request",
        type=P,
        metavar="CSR_OUT",
        help="Receiver: write a certificate request; keep its new key in --request-key.",
    ),
    click.option("--request-key", type=P, help="Key kept by --request. [default: CSR_OUT.key]"),
    click.option("--sign", type=P, metavar="CSR", help="Issuer: sign CSR; print proxy cert + chain."),
    click.option(
        "--assemble",
        type=P,
        metavar="CERTS",
        help="Receiver: CERTS returned by --sign + --request-key -> proxy file --out.",
    ),
    click.option(
        "--info",
        type=P,
        is_flag=False,
        flag_value=Path(""),
        metavar="[FILE]",
        help="Describe a proxy file (default: the proxy --out would write).",
    ),
    click.option(
        "--refresh-jobs",
        is_flag=True,
        help="Give your idle and running jobs whose proxy expires within --threshold a new proxy.",
    ),
    click.option("--owner", metavar="USER", help="With --refresh-jobs: whose jobs. [default: you]"),
    click.option(
        "--threshold",
        metavar="DURATION",
        help="With --refresh-jobs: refresh proxies that expire within it (6h, 90m, 1d). [default: 6h]",
    ),
    click.option("--dry-run", is_flag=True, help="With --refresh-jobs: list the jobs, change nothing."),
]


def proxy_options(f: F) -> F:
    """Add every delegate-proxy option to ``f``, listed in --help in the order above."""
    for option in reversed(_OPTIONS):  # decorators apply bottom-up
        f = option(f)
    return f
