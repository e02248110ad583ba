#!/bin/sh
# Runs as root on the VM, from cloud-init. In this order:
#  1. lets only root reach the cloud's metadata service: the user-data there holds the
#     batch's IDTOKEN and signing key, with which any job could command every VM of the
#     batch and advertise startds that attract other users' jobs (HTCondor's annex does
#     the same). No nft and no iptables: HTCondor is stopped and the script fails, so
#     csctl's join-check terminates the VM with this console saved.
#  2. leaves the token and key files to root alone (0600);
#  3. names the VM after its launch index in the boot batch;
#  4. (re)starts HTCondor.
# `csctl-vm-setup --firewall-only` does step 1 alone: cloud-init's bootcmd runs it every
# boot, before condor.service can start jobs (firewall rules do not survive a reboot).
#
# CSCTL_LAUNCH_INDEX, CSCTL_CONDOR_ETC and CSCTL_NO_START let csctl's local driver run the
# very same script on csctl's own host: given either of the first two, the script is not
# on a VM and never touches the host's firewall (CSCTL_FIREWALL=1 installs the rule all the
# same: tests do, inside a network namespace). CSCTL_METADATA_OPEN=1, in the environment or
# as a line of /etc/csctl/vm-setup.conf, leaves the metadata service open to every user.
set -eu
umask 077
etc="${CSCTL_CONDOR_ETC:-/etc/condor}"
index="${CSCTL_LAUNCH_INDEX:-}"
mode="${1:-}"
imds=169.254.169.254
imds6=fd00:ec2::254

say() { echo "csctl: $*" >&2; }

hold_condor() {  # HTCondor must not run, now or later in this boot
    [ -z "${CSCTL_NO_START:-}" ] || return 0
    systemctl mask --runtime condor >/dev/null 2>&1 || true
    systemctl stop condor 2>/dev/null || service condor stop 2>/dev/null || true
}

# -- 1. the metadata service, for root only ---------------------------------------------

# A job's own connections leave through OUTPUT, as its uid (root's are let through; a
# packet of no process, such as the kernel's own reject, is left alone); a container on a
# bridge (Docker) reaches the address through FORWARD, where no uid is known: refused.
nft_rules() {
    command -v nft >/dev/null 2>&1 || return 1
    # add-then-delete makes the load idempotent; -f applies the file as one transaction
    nft_error=$(nft -f - 2>&1 <<EOF
table inet csctl_metadata
delete table inet csctl_metadata
table inet csctl_metadata {
    chain output {
        type filter hook output priority 0; policy accept;
        ip daddr $imds meta skuid != 0 reject
        ip6 daddr $imds6 meta skuid != 0 reject
    }
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip daddr $imds reject
        ip6 daddr $imds6 reject
    }
}
EOF
    ) && return 0
    echo "$nft_error" >&2
    return 1
}

ipt_rule() {  # iptables-command chain rule...: inserted first in the chain, unless there already
    cmd=$1
    shift
    "$cmd" -C "$@" 2>/dev/null || "$cmd" -I "$@"
}

ipt_rules() {  # iptables-command address unreachable-type (TCP is reset: refused at once)
    for chain in OUTPUT FORWARD; do
        owner="-m owner --socket-exists ! --uid-owner 0"
        [ "$chain" = OUTPUT ] || owner=""
        # $owner unquoted: its words are arguments
        ipt_rule "$1" "$chain" -d "$2" -p all $owner -j REJECT --reject-with "$3" &&
            ipt_rule "$1" "$chain" -d "$2" -p tcp $owner -j REJECT --reject-with tcp-reset || return 1
    done
}

iptables_rules() {
    command -v iptables >/dev/null 2>&1 || return 1
    ipt_rules iptables "$imds" icmp-port-unreachable || return 1
    [ -e /proc/net/if_inet6 ] || return 0  # no IPv6: nothing reaches the IPv6 address
    if ! command -v ip6tables >/dev/null 2>&1; then
        missing="ip6tables is not installed (IPv6 is on)"
        return 1
    fi
    ipt_rules ip6tables "$imds6" icmp6-port-unreachable
}

metadata_open() {
    [ "${CSCTL_METADATA_OPEN:-}" = 1 ] || grep -qx 'CSCTL_METADATA_OPEN=1' /etc/csctl/vm-setup.conf 2>/dev/null
}

firewall() {
    if [ -z "${CSCTL_FIREWALL:-}" ] && { [ -n "${CSCTL_LAUNCH_INDEX:-}" ] || [ -n "${CSCTL_CONDOR_ETC:-}" ]; }; then
        return 0  # csctl's own host (local driver), not a VM
    fi
    if metadata_open; then
        say "the metadata service ($imds) stays open to every user of this VM (CSCTL_METADATA_OPEN=1)"
        return 0
    fi
    missing="neither nft nor iptables is installed"
    nft_rules && return 0
    iptables_rules && return 0
    hold_condor
    case "$missing" in ip6tables*) ;; *)
        tools=""
        for tool in nft iptables; do
            if command -v "$tool" >/dev/null 2>&1; then tools="${tools:+$tools and }$tool"; fi
        done
        [ -z "$tools" ] || missing="$tools failed" ;;
    esac
    say "cannot keep jobs from the metadata service ($imds): $missing; HTCondor stopped"
    exit 1
}

case "$mode" in
    '') ;;
    --firewall-only) firewall; exit 0 ;;
    *) say "usage: csctl-vm-setup [--firewall-only]"; exit 2 ;;
esac
firewall

# -- 2. the batch's credentials, for root only -------------------------------------------

# HTCondor reads tokens.d and passwords.d as root; cloud-init wrote them 0600 already
for secret in "$etc/tokens.d/csctl-vm" "$etc/passwords.d/@BATCH@"; do
    [ -f "$secret" ] || continue
    [ "$(id -u)" != 0 ] || chown root:root "$secret"
    chmod 0600 "$secret"
done

# -- 3. the launch index -----------------------------------------------------------------

# curl, else wget (GNU wget: busybox's cannot PUT, so it gets IMDSv1 only)
get() {  # url [header]: the body on stdout, non-zero when there is none
    if command -v curl >/dev/null 2>&1; then
        if [ $# -gt 1 ]; then curl -sf --max-time 5 -H "$2" "$1"; else curl -sf --max-time 5 "$1"; fi
    elif [ $# -gt 1 ]; then
        wget -q -T 5 --header="$2" -O - "$1"
    else
        wget -q -T 5 -O - "$1"
    fi 2>/dev/null
}

ec2_token() {  # an IMDSv2 session token, if the service gives one
    ttl="X-aws-ec2-metadata-token-ttl-seconds: 60"
    if command -v curl >/dev/null 2>&1; then
        curl -sf --max-time 5 -X PUT -H "$ttl" "http://$imds/latest/api/token" 2>/dev/null
    else
        wget -q -T 5 --method=PUT --header="$ttl" -O - "http://$imds/latest/api/token" 2>/dev/null
    fi
}

ec2_get() {  # path under /latest/: IMDSv2 first, then IMDSv1 (clouds without tokens)
    token=$(ec2_token) || token=""
    if [ -n "$token" ] && get "http://$imds/latest/$1" "X-aws-ec2-metadata-token: $token"; then
        return 0
    fi
    get "http://$imds/latest/$1"
}

config_drive() {  # openstack/latest/meta_data.json of an attached config drive
    dev=$(blkid -t LABEL=config-2 -o device 2>/dev/null || blkid -t LABEL=CONFIG-2 -o device 2>/dev/null) || dev=""
    dev=$(echo "$dev" | sed -n 1p)
    [ -n "$dev" ] || return 1
    dir=$(mktemp -d)
    rc=1
    if mount -o ro "$dev" "$dir" 2>/dev/null; then
        cat "$dir/openstack/latest/meta_data.json" 2>/dev/null && rc=0
        umount "$dir" || true
    fi
    rmdir "$dir" 2>/dev/null || true
    return "$rc"
}

openstack_meta() {
    config_drive || get "http://$imds/openstack/latest/meta_data.json"
}

if [ -z "$index" ]; then
    case "@METADATA@" in
        ec2) index=$(ec2_get meta-data/ami-launch-index) || index="" ;;
        openstack) index=$(openstack_meta | sed -n 's/.*"launch_index": *\([0-9][0-9]*\).*/\1/p') || index="" ;;
    esac
fi
if [ -z "$index" ] && [ "@METADATA@" = none ]; then
    index=0  # no metadata service and no index given: a batch of one
fi
case "$index" in ''|*[!0-9]*)
    # guessing would give two VMs of the batch one id: never join; join-check --fix
    # terminates this VM after the join timeout, with this console saved
    hold_condor
    say "cannot read this VM's launch index from the @METADATA@ metadata service; HTCondor stopped"
    exit 1 ;;
esac

# -- 4. HTCondor -------------------------------------------------------------------------

umask 022  # plain configuration, no secret
printf 'CsctlId = "%s-%s"\n' "@BATCH@" "$index" > "$etc/config.d/51-csctl-id.conf"
if [ -z "${CSCTL_NO_START:-}" ]; then
    systemctl unmask --runtime condor >/dev/null 2>&1 || true  # held by an earlier boot step
    systemctl restart condor 2>/dev/null || service condor restart
fi
