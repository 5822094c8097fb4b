#!/bin/sh
# One organisation's container (or machine): make its own key and API certificate,
# take part in the genesis ceremony through a shared exchange folder (only cards, the
# draft, signatures and certificates pass through it), then run the node.
#
#   ORG_NAME, ORG_ROLE      this member's name and role (nmi, utility, ...)
#   ORG_IP                  its address (p2p and API)
#   MEMBERS                 how many cards make the draft
#   COORDINATOR=1           this member assembles the draft and finalizes the genesis
#   CHAIN_ID                the network's name (coordinator)
#   HOME_DIR, EXCHANGE      the node's home and the shared folder
#   P2P_PORT, API_PORT      defaults 7000 and 8443
set -eu
: "${ORG_NAME:?}" "${ORG_ROLE:?}" "${ORG_IP:?}" "${MEMBERS:?}"
HOME_DIR=${HOME_DIR:-/var/lib/metroledger}
X=${EXCHANGE:-/exchange}
P2P_PORT=${P2P_PORT:-7000}
API_PORT=${API_PORT:-8443}
CHAIN_ID=${CHAIN_ID:-metroledger-compose}
ML=${METROLEDGER:-metroledger}
mkdir -p "$HOME_DIR" "$X/cards" "$X/sigs" "$X/certs"

wait_for() {  # wait_for DESCRIPTION COMMAND...: at most 10 minutes
    what=$1; shift
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        if [ "$tries" -gt 1200 ]; then echo "gave up waiting for $what" >&2; exit 1; fi
        sleep 0.5
    done
}
count() { ls "$1" 2>/dev/null | grep -c "$2" || true; }
have_cards() { [ "$(count "$X/cards" '\.json$')" -ge "$MEMBERS" ]; }
have_sigs() { [ "$(count "$X/sigs" '\.json$')" -ge "$MEMBERS" ]; }

[ -f "$HOME_DIR/keys/node_key.json" ] || $ML keys new --home "$HOME_DIR"
if [ ! -f "$HOME_DIR/tls/api.crt" ]; then  # the organisation's own certificate
    mkdir -p "$HOME_DIR/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj "/CN=$ORG_NAME" -addext "subjectAltName=IP:$ORG_IP" \
        -keyout "$HOME_DIR/tls/api.key" -out "$HOME_DIR/tls/api.crt" 2>/dev/null
fi
cp "$HOME_DIR/tls/api.crt" "$X/certs/$ORG_NAME.crt"
if [ ! -f "$X/cards/$ORG_NAME.json" ]; then
    $ML genesis member --home "$HOME_DIR" --name "$ORG_NAME" --role "$ORG_ROLE" \
        --p2p "/ip4/$ORG_IP/tcp/$P2P_PORT" --api "https://$ORG_IP:$API_PORT" \
        --out "$X/cards/.$ORG_NAME.json"
    mv "$X/cards/.$ORG_NAME.json" "$X/cards/$ORG_NAME.json"  # whole files only
fi

if [ "${COORDINATOR:-0}" = 1 ] && [ ! -f "$X/draft.json" ]; then
    wait_for "$MEMBERS cards" have_cards
    $ML genesis assemble $(ls "$X"/cards/*.json | sort) --chain-id "$CHAIN_ID" \
        --out "$X/.draft.json"
    mv "$X/.draft.json" "$X/draft.json"
fi
wait_for "the draft" test -f "$X/draft.json"
if [ ! -f "$X/sigs/$ORG_NAME.json" ]; then
    $ML genesis sign "$X/draft.json" --home "$HOME_DIR" --out "$X/sigs/.$ORG_NAME.json"
    mv "$X/sigs/.$ORG_NAME.json" "$X/sigs/$ORG_NAME.json"
fi
if [ "${COORDINATOR:-0}" = 1 ] && [ ! -f "$X/genesis.json" ]; then
    wait_for "$MEMBERS signatures" have_sigs
    cat "$X"/certs/*.crt > "$X/certs/.bundle.crt" && mv "$X/certs/.bundle.crt" "$X/certs/bundle.crt"
    $ML genesis finalize "$X/draft.json" $(ls "$X"/sigs/*.json | sort) --out "$X/.genesis.json"
    mv "$X/.genesis.json" "$X/genesis.json"
fi
wait_for "the genesis" test -f "$X/genesis.json"
cp "$X/genesis.json" "$HOME_DIR/genesis.json"
exec $ML node run --config "$HOME_DIR/node.toml"
