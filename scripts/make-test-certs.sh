#!/usr/bin/env bash
# Writes the TLS test fixtures in Tests/Fixtures/tls (docs/SECURITY.md, "TLS"): a test CA, a
# server certificate for 127.0.0.1 and localhost, a client certificate, a peer certificate (both
# roles, for 127.0.0.1 and localhost) and a peer certificate made for another host, all signed by
# that CA, valid for ten years. The committed files were made by this script; run it again (openssl
# from Debian's openssl package) to replace them. Test use only: the keys are public.
set -euo pipefail
cd "$(dirname "$0")/.."
out=Tests/Fixtures/tls
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=3650
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" \
    -subj "/CN=kvd test CA" -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
sign() { # name, subject, extensions
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
        -keyout "$out/$1.key" -out "$work/$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" -CAcreateserial \
        -days "$days" -extfile "$work/$1.ext" -out "$out/$1.pem" 2>/dev/null
}
sign server "/CN=kvd test server" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
sign client "/CN=kvd test client" "extendedKeyUsage=clientAuth"
sign peer "/CN=kvd test peer" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth,clientAuth"
sign peer-elsewhere "/CN=kvd test peer elsewhere" "subjectAltName=DNS:elsewhere.example,IP:192.0.2.7
extendedKeyUsage=serverAuth,clientAuth"
rm -f "$out/ca.srl"
echo "wrote $(ls "$out" | tr '\n' ' ')to $out"
