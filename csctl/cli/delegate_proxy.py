"""``csctl delegate-proxy``: make, delegate and describe RFC 3820 proxy certificates."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import CredentialError, ExitCode, InputError
from csctl.proxy import (
    assemble_proxy_file,
    default_proxy_path,
    default_trust_dir,
    make_proxy_file,
    proxy_info,
    sign_request_file,
    write_private,
    write_request,
)
from csctl.proxy.refresh import Issuer

P = click.Path(path_type=Path)
MODES = ("request", "sign", "assemble", "info")


@click.command("delegate-proxy")
@click.option(
    "--cert",
    type=P,
    envvar="X509_USER_CERT",
    show_envvar=True,
    help="Issuer certificate, or a proxy file to make a proxy of a proxy. [default: ~/.globus/usercert.pem]",
)
@click.option(
    "--key",
    type=P,
    envvar="X509_USER_KEY",
    show_envvar=True,
    help="Issuer private key (mode 0600 or 0400). [default: ~/.globus/userkey.pem]",
)
@click.option(
    "--out",
    type=P,
    help="Proxy file to write. [default: $X509_USER_PROXY, else /tmp/x509up_u<uid>; with --sign: stdout;"
    " with --refresh-jobs: a private temporary file]",
)
@click.option(
    "--valid",
    "lifetime",
    default="12:00",
    show_default=True,
    metavar="H:M",
    help="Lifetime H:M; capped, with a warning, at the issuer's remaining life.",
)
@click.option(
    "--limited", is_flag=True, help="Make a limited proxy (gatekeepers refuse it for job submission)."
)
@click.option(
    "--path-length",
    type=click.IntRange(min=0),
    help="Allow at most N further proxies below this one. [default: unlimited]",
)
@click.option(
    "--bits", type=click.IntRange(min=2048), default=2048, show_default=True, help="Size of the new RSA key."
)
@click.option(
    "--passphrase-fd",
    type=int,
    metavar="N",
    help="Read the key's passphrase from file descriptor N (else asked on the terminal).",
)
@click.option(
    "--cert-dir",
    type=P,
    envvar="X509_CERT_DIR",
    show_envvar=True,
    help="Trusted CA directory. [default: ~/.globus/certificates or /etc/grid-security/certificates]",
)
@click.option(
    "--request",
    type=P,
    metavar="CSR_OUT",
    help="Receiver: write a certificate request; keep its new key in --request-key.",
)
@click.option("--request-key", type=P, help="Key kept by --request. [default: CSR_OUT.key]")
@click.option("--sign", type=P, metavar="CSR", help="Issuer: sign CSR; print proxy cert + chain.")
@click.option(
    "--assemble",
    type=P,
    metavar="CERTS",
    help="Receiver: CERTS returned by --sign + --request-key -> proxy file --out.",
)
@click.option(
    "--info",
    type=P,
    is_flag=False,
    flag_value=Path(""),
    metavar="[FILE]",
    help="Describe a proxy file (default: the proxy --out would write).",
)
@click.option(
    "--refresh-jobs",
    is_flag=True,
    help="Give your idle and running jobs whose proxy expires within --threshold a new proxy.",
)
@click.option("--owner", metavar="USER", help="With --refresh-jobs: whose jobs. [default: you]")
@click.option(
    "--threshold",
    metavar="DURATION",
    help="With --refresh-jobs: refresh proxies that expire within it (6h, 90m, 1d). [default: 6h]",
)
@click.option("--dry-run", is_flag=True, help="With --refresh-jobs: list the jobs, change nothing.")
@json_option
@pass_app
def command(app: Application, **opts: Any) -> None:
    """Make an RFC 3820 proxy certificate, as grid-proxy-init does, or delegate one.

    Without a mode option, signs a fresh 2048-bit key with your certificate and
    writes proxy cert, key and chain to one 0600 file. Delegation keeps every
    private key on its own machine: the receiver runs --request and sends the CSR,
    the issuer runs --sign and sends back the certificates, the receiver runs
    --assemble. Refused input (expired, mismatched key, bad chain...) exits 7
    without writing anything. --refresh-jobs makes one proxy and sends it to the
    schedd for each of your queued jobs whose proxy expires soon (exit 4 if any
    job's refresh failed).

    \b
    Examples:
      csctl delegate-proxy --valid 24:00
      csctl delegate-proxy --info
      csctl delegate-proxy --request req.pem          # on the receiver
      csctl delegate-proxy --sign req.pem --out signed.pem   # on the issuer
      csctl delegate-proxy --assemble signed.pem --request-key req.pem.key
      csctl delegate-proxy --refresh-jobs --threshold 6h --dry-run
    """
    modes = [m for m in (*MODES, "refresh_jobs") if opts[m] not in (None, False)]
    if len(modes) > 1:
        raise InputError(f"choose one of --{' / --'.join(m.replace('_', '-') for m in modes)}")
    if "refresh_jobs" not in modes and (opts["owner"] or opts["threshold"] or opts["dry_run"]):
        raise InputError("--owner, --threshold and --dry-run go with --refresh-jobs")
    run = {"request": _request, "sign": _sign, "assemble": _assemble, "info": _info}
    run["refresh_jobs"] = _refresh
    run.get(modes[0] if modes else "", _make)(app, opts)


def _issuer(opts: dict[str, Any]) -> dict[str, Any]:
    return Issuer.from_options(opts, getpass.getpass).arguments()


def _trust_dir(opts: dict[str, Any]) -> Path | None:
    return opts["cert_dir"] or default_trust_dir()


def _make(app: Application, opts: dict[str, Any]) -> None:
    out = opts["out"] or default_proxy_path()
    made = make_proxy_file(out=out, bits=opts["bits"], **_issuer(opts))
    for warning in made.warnings:
        app.console.warn(warning)
    _show(app, out, opts)


def _request(app: Application, opts: dict[str, Any]) -> None:
    csr = opts["request"]
    key = opts["request_key"] or csr.with_name(csr.name + ".key")
    write_request(csr, key, opts["bits"])
    if app.console.json_output:
        app.console.print_json({"request": str(csr), "request_key": str(key)})
    else:
        app.console.result(f"request {csr}: send it to the issuer; key kept in {key}")


def _sign(app: Application, opts: dict[str, Any]) -> None:
    pem, signed = sign_request_file(opts["sign"], **_issuer(opts))
    for warning in signed.warnings:
        app.console.warn(warning)
    if opts["out"] is None:
        click.echo(pem.decode(), nl=False)
        return
    write_private(opts["out"], pem)
    app.console.info(f"signed proxy {opts['out']}: send it back to the requester")


def _assemble(app: Application, opts: dict[str, Any]) -> None:
    if opts["request_key"] is None:
        raise InputError("--assemble needs --request-key, the key kept by --request")
    out = opts["out"] or default_proxy_path()
    assemble_proxy_file(opts["assemble"], opts["request_key"], out, trust_dir=_trust_dir(opts))
    _show(app, out, opts)


def _info(app: Application, opts: dict[str, Any]) -> None:
    _show(app, opts["info"] if opts["info"] != Path("") else default_proxy_path(), opts)


def _show(app: Application, path: Path, opts: dict[str, Any]) -> None:
    info = proxy_info(path, trust_dir=_trust_dir(opts))
    if app.console.json_output:
        app.console.print_json(info)
    else:
        left = info.seconds_left
        for label, value in [
            ("file", info.path),
            ("subject", info.subject),
            ("issuer", info.issuer),
            ("identity", info.identity),
            ("type", info.type.value),
            ("time left", f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"),
            ("valid until", f"{info.not_after:%Y-%m-%d %H:%M:%SZ}"),
        ]:
            app.console.result(f"{label:<11} : {value}")
        rows = [(c.type.value, c.subject, f"{c.not_after:%Y-%m-%d %H:%M}Z") for c in info.chain]
        app.console.table("chain", ["type", "subject", "valid until"], rows)
    if info.problem:
        raise CredentialError(info.problem)


def _refresh(app: Application, opts: dict[str, Any]) -> None:
    from csctl.proxy import refresh

    report = refresh.refresh_from_options(app.pool(), opts, datetime.now(UTC), getpass.getpass)
    console = app.console
    for warning in report.warnings + report.plan.errors:
        console.warn(warning)
    if console.json_output:
        console.print_json(refresh.report_dict(report))
    else:
        if report.results:
            columns = ["schedd", "job", "owner", "status", "proxy expires", "result"]
            console.table(None, columns, refresh.report_rows(report))
        for result in report.results:
            if result.error:
                console.result(f"job {result.job.id}: {result.error}")
        console.result(refresh.summary(report))
    if report.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))
