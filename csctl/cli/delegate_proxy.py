"""``csctl delegate-proxy``: make, delegate and describe RFC 3820 proxy certificates."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from csctl.cli._proxy_inputs import fill_defaults, protect, resolve_trust
from csctl.cli._proxy_options import proxy_options
from csctl.cli._proxy_render import show_proxy, show_refresh
from csctl.cli.app import Application, json_option, pass_app
from csctl.errors import ExitCode, InputError
from csctl.proxy import (
    IssueOptions,
    assemble_proxy_file,
    default_proxy_path,
    parse_lifetime,
    write_private,
    write_request,
)
from csctl.proxy.credentials import parse_fd
from csctl.proxy.issuer import Issuer

MODES = ("request", "sign", "assemble", "info", "refresh_jobs")
Options = dict[str, Any]  # click's values, read here only: the library gets typed arguments


@click.command("delegate-proxy")
@proxy_options
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
    modes = [m for m in MODES if opts[m] not in (None, False)]
    if len(modes) > 1:
        raise InputError(f"choose one of --{' / --'.join(m.replace('_', '-') for m in modes)}")
    if "refresh_jobs" not in modes and (opts["owner"] or opts["threshold"] or opts["dry_run"]):
        raise InputError("--owner, --threshold and --dry-run go with --refresh-jobs")
    mode = modes[0] if modes else ""
    fill_defaults(mode, opts)
    protect(mode, opts)
    for warning in resolve_trust(mode, opts):
        app.console.warn(warning)
    run = {"request": _request, "sign": _sign, "assemble": _assemble, "info": _info, "refresh_jobs": _refresh}
    run.get(mode, _make)(app, opts)


def _issuer(opts: Options) -> Issuer:
    options = IssueOptions(parse_lifetime(opts["lifetime"]), opts["limited"], opts["path_length"])
    fd = opts["passphrase_fd"]
    return Issuer.resolve(
        options,
        prompt=getpass.getpass,  # looked up now: the terminal is the process edge tests replace
        cert=opts["cert"],
        key=opts["key"],
        passphrase_fd=parse_fd(fd) if fd is not None else None,
        cert_dir=opts["cert_dir"],
    )


def _make(app: Application, opts: Options) -> None:
    made = _issuer(opts).make_proxy_file(opts["out"], opts["bits"])
    for warning in made.warnings:
        app.console.warn(warning)
    show_proxy(app, opts["out"], opts["cert_dir"])


def _request(app: Application, opts: Options) -> None:
    csr, key = opts["request"], opts["request_key"]
    write_request(csr, key, opts["bits"])
    if app.console.json_output:
        app.console.print_json({"request": str(csr), "request_key": str(key)})
    else:
        app.console.result(f"request {csr}: send it to the issuer; key kept in {key}")


def _sign(app: Application, opts: Options) -> None:
    pem, signed = _issuer(opts).sign_request_file(opts["sign"])
    for warning in signed.warnings:
        app.console.warn(warning)
    if opts["out"] is None:
        click.echo(pem.decode(), nl=False)
        return
    write_private(opts["out"], pem)
    app.console.info(f"signed proxy {opts['out']}: send it back to the requester")


def _assemble(app: Application, opts: Options) -> None:
    if opts["request_key"] is None:
        raise InputError("--assemble needs --request-key, the key kept by --request")
    assemble_proxy_file(opts["assemble"], opts["request_key"], opts["out"], trust_dir=opts["cert_dir"])
    show_proxy(app, opts["out"], opts["cert_dir"])


def _info(app: Application, opts: Options) -> None:
    show_proxy(app, opts["info"] if opts["info"] != Path("") else default_proxy_path(), opts["cert_dir"])


def _refresh(app: Application, opts: Options) -> None:
    from csctl.engine.proxy import refresh_proxies
    from csctl.proxy.refresh import RefreshSettings

    settings = RefreshSettings.resolve(
        _issuer(opts),
        owner=opts["owner"],
        threshold=opts["threshold"],
        bits=opts["bits"],
        out=opts["out"],
        dry_run=opts["dry_run"],
    )
    report = refresh_proxies(app.services, settings)
    show_refresh(app, report)
    if report.partial:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))
