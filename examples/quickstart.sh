#!/usr/bin/env bash
# Quick start: a walk through the service's API against a running server,
# from registration to logout, as a user, an admin and a service. Each step
# prints the request, the status and the answer, and the script stops at
# the first step that answers another status than the one it expects.
#
# Start the server from the repository root with a service key, then run
# the script from anywhere:
#
#   SERVICE_API_KEYS=quickstart:quickstart-key-0123456789 go run ./cmd/usersvc
#   examples/quickstart.sh
#
# It needs bash and curl, nothing else: ids and tokens are read out of the
# JSON answers with grep and sed (they never hold a quote or a backslash).
#
# Environment (all optional):
#   BASE         the server (default http://localhost:8000)
#   SERVICE_KEY  a key the server's SERVICE_API_KEYS holds, with the
#                users.read scope (default quickstart-key-0123456789)
#   USERSVC      the command that runs usersvc on the server's database, for
#                create-admin (default "go run ./cmd/usersvc", run from the
#                repository root with the caller's environment: give it the
#                DATA_DIR or DATABASE_URL the server has, when not the
#                default). Split on spaces.
#
# Each run registers new accounts (the emails carry a random suffix), so it
# can run again against the same server; the server lets one address
# register 10 accounts an hour.
set -euo pipefail

BASE=${BASE:-http://localhost:8000}
SERVICE_KEY=${SERVICE_KEY:-quickstart-key-0123456789}
read -r -a usersvc <<<"${USERSVC:-go run ./cmd/usersvc}"
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

suffix="$(date +%s)$RANDOM"
EMAIL="grace+$suffix@example.com"
PASSWORD='Cobol#1959rocks'
ADMIN_EMAIL="admin+$suffix@example.com"
ADMIN_PASSWORD='Analytical-Engine#1843'

step() { printf '\n== %s\n' "$*"; }

# call WANT METHOD PATH [CURL-ARGS...] sends a request to the server, prints
# the answer and leaves its body in BODY; it fails unless the status is WANT.
call() {
  local want=$1 method=$2 path=$3 status
  shift 3
  if ! status=$(curl -sS -o "$tmp/body" -w '%{http_code}' -X "$method" "$BASE$path" "$@"); then
    echo "FAIL: $method $path: no answer from $BASE (is the server running?)" >&2
    exit 1
  fi
  BODY=$(cat "$tmp/body")
  printf '%s %s -> %s\n%s\n' "$method" "$path" "$status" "$BODY"
  if [ "$status" != "$want" ]; then
    echo "FAIL: $method $path answered $status, expected $want" >&2
    exit 1
  fi
}

# field KEY prints the first string value of KEY in BODY; it fails when
# there is none.
field() {
  local v
  v=$(printf '%s' "$BODY" | grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | sed 's/^.*:"\(.*\)"$/\1/') || true
  if [ -z "$v" ]; then
    echo "FAIL: the answer has no \"$1\"" >&2
    exit 1
  fi
  printf '%s' "$v"
}

json=(-H 'Content-Type: application/json')

step "Register a user"
call 201 POST /api/v1/users/ "${json[@]}" -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\", \"name\": \"Grace Hopper\", \"preferences\": {\"email\": true, \"push\": true}}"
USER_ID=$(field user_id)

step "Log in: an access token and a refresh token"
call 200 POST /api/v1/users/login "${json[@]}" -d "{\"email\": \"$EMAIL\", \"password\": \"$PASSWORD\"}"
ACCESS=$(field access)
REFRESH=$(field refresh)
user=(-H "Authorization: Bearer $ACCESS")

step "Read the user"
call 200 GET "/api/v1/users/$USER_ID/" "${user[@]}"

step "Turn push notifications off, then read the preferences"
call 200 PATCH "/api/v1/users/$USER_ID/preferences" "${user[@]}" "${json[@]}" -d '{"push": false}'
call 200 GET "/api/v1/users/$USER_ID/preferences" "${user[@]}"

step "Register a push token for a device"
call 200 PATCH "/api/v1/users/$USER_ID/push_token" "${user[@]}" "${json[@]}" \
  -d "{\"push_token\": \"fcm:quickstart-$suffix\", \"device_id\": \"grace-pixel\", \"device_type\": \"android\"}"
call 200 GET "/api/v1/users/$USER_ID/push_tokens" "${user[@]}"

step "Refresh: the refresh token is spent, a new pair comes back"
call 200 POST /api/v1/users/refresh "${json[@]}" -d "{\"refresh\": \"$REFRESH\"}"
ACCESS=$(field access)
REFRESH=$(field refresh)
user=(-H "Authorization: Bearer $ACCESS")
call 200 GET "/api/v1/users/$USER_ID/" "${user[@]}"

step "Create an admin (usersvc create-admin reads the password on standard input), log in as the admin"
printf '%s %s\n' "${usersvc[*]}" "create-admin --email $ADMIN_EMAIL --name 'Ada Lovelace'"
if ! out=$(printf '%s\n' "$ADMIN_PASSWORD" | "${usersvc[@]}" create-admin --email "$ADMIN_EMAIL" --name 'Ada Lovelace'); then
  echo "FAIL: create-admin (is USERSVC pointed at the server's database?)" >&2
  exit 1
fi
echo "$out"
call 200 POST /api/v1/users/login "${json[@]}" -d "{\"email\": \"$ADMIN_EMAIL\", \"password\": \"$ADMIN_PASSWORD\"}"
ADMIN_ACCESS=$(field access)
call 200 GET "/api/v1/users/?page=1&limit=5" -H "Authorization: Bearer $ADMIN_ACCESS"

step "A service reads the user with its key (X-Service-API-Key)"
service=(-H "X-Service-API-Key: $SERVICE_KEY")
call 200 GET "/api/v1/users/$USER_ID/" "${service[@]}"

step "A service looks users up in one batch; an unknown id comes back in not_found"
MISSING_ID=00000000-0000-4000-8000-000000000000
call 200 POST /api/v1/users/batch "${service[@]}" "${json[@]}" -d "{\"user_ids\": [\"$USER_ID\", \"$MISSING_ID\"]}"
case $BODY in
*"\"not_found\":[\"$MISSING_ID\"]"*) ;;
*) echo "FAIL: the batch answer does not list $MISSING_ID as not found" >&2; exit 1 ;;
esac

step "Log out: the session ends, its refresh token no longer works"
call 200 POST /api/v1/users/logout "${json[@]}" -d "{\"refresh\": \"$REFRESH\"}"
call 401 POST /api/v1/users/refresh "${json[@]}" -d "{\"refresh\": \"$REFRESH\"}"

printf '\nquickstart: every step answered as expected (user %s)\n' "$USER_ID"
