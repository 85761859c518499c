#!/usr/bin/env bash
# Makes throwaway TLS material for tests in DIR:
#   ca.pem                     the test CA
#   server.pem server.key      signed by it, for 127.0.0.1, ::1 and localhost
#   client.pem client.key      signed by it (mutual TLS)
#   rogue-ca.pem               another CA: trusting it instead must fail verification
#   rogue-client.pem/.key      signed by the rogue CA: a server with ca.pem must refuse it
#   expired.pem/.key           signed by the CA for the server's names, expired a day ago
#   expired-client.pem/.key    a client certificate, expired a day ago
#   wrongname.pem/.key         signed by the CA for elsewhere.example only (hostname check)
set -euo pipefail
dir=${1:?usage: make_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { echo "make_test_certs: openssl not found" >&2; exit 77; }

ca() { # name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=r3map test $1" -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
leaf() { # name ca san [days]; negative days: notAfter lies that far in the past
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "${4:-2}" \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
  chmod 600 "$1.key"
}

ca ca
ca rogue-ca
leaf server ca "IP:127.0.0.1,IP:::1,DNS:localhost"
leaf client ca "DNS:r3map-client"
leaf rogue-client rogue-ca "DNS:r3map-client"
leaf expired ca "IP:127.0.0.1,IP:::1,DNS:localhost" -1
leaf expired-client ca "DNS:r3map-client" -1
leaf wrongname ca "DNS:elsewhere.example"
