#!/usr/bin/env bash
# Fetch the pinned Leaflet from the npm registry into osmgap/export/vendor/leaflet/ (gitignored),
# where `osmgap scan` finds it and inlines it into its self-contained map page.
# The tarball must match the sha512 integrity pinned in osmgap/export/leaflet.pin, or nothing is
# installed. Does nothing when that version is already there. Needs python3 and tar.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
. osmgap/export/leaflet.pin
dest=${OSMGAP_LEAFLET_DIR:-osmgap/export/vendor/leaflet}
if [ "$(cat "$dest/VERSION" 2>/dev/null || true)" = "$LEAFLET_VERSION" ] && [ -s "$dest/leaflet.js" ] && [ -s "$dest/leaflet.css" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$LEAFLET_TARBALL" "$work/leaflet.tgz" "$LEAFLET_INTEGRITY" <<'PY'
import base64, hashlib, sys, time, urllib.request
url, path, integrity = sys.argv[1:4]
for attempt in range(4):  # timeouts and retries with backoff
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
        break
    except OSError as exc:
        if attempt == 3:
            sys.exit(f"fetch_leaflet: {url}: {exc}")
        time.sleep(2 ** attempt)
algo, expected = integrity.split("-", 1)
digest = base64.b64encode(hashlib.new(algo, data).digest()).decode()
if digest != expected:
    sys.exit(f"fetch_leaflet: {url}: {algo} integrity mismatch (got {digest}); refusing to install")
open(path, "wb").write(data)
PY
tar -xzf "$work/leaflet.tgz" -C "$work" package/dist/leaflet.js package/dist/leaflet.css package/LICENSE
mkdir -p "$dest"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$dest/"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "$LEAFLET_VERSION" > "$dest/VERSION"
echo "osmgap setup: Leaflet $LEAFLET_VERSION -> $dest"
