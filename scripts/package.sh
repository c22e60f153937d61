#!/usr/bin/env bash
# Stages the deployable function app, as the Functions host loads it and as azd deploys it:
#   <out>/app/host.json
#   <out>/app/<function>/function.json    one folder per function at the app's root (the host reads
#                                         <script root>/<name>/function.json and nothing deeper)
#   <out>/app/bin/handler                 the custom handler, static linux/amd64 (host.json names it)
#   <out>/standby-app.zip                 the same tree, exec bits kept (zip deploy / azd)
# Usage: scripts/package.sh [out]   (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
app=$out/app
rm -rf "$app" "$out/standby-app.zip"
mkdir -p "$app/bin"
cp host.json "$app/host.json"
for fj in functions/*/function.json; do
  name=$(basename "$(dirname "$fj")")
  mkdir -p "$app/$name"
  cp "$fj" "$app/$name/function.json"
done
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-s -w' -o "$app/bin/handler" ./cmd/handler
go run ./scripts/zipapp "$app" "$out/standby-app.zip"
echo "package: $app and $out/standby-app.zip"
