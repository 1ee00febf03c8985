#!/usr/bin/env bash
# Renders the sample audio in this folder from the .txt beside each file, with
# text-to-speech voices from Debian's packages. The samples deliberately differ
# in rate, bit depth, channel count and voice, so `make demo` exercises the
# whole audio path (decoding, downmixing, resampling).
#
#   apt-get install espeak-ng flite sox && audio/render.sh
set -euo pipefail
cd "$(dirname "$0")"
for tool in espeak-ng flite sox; do
  command -v "$tool" >/dev/null || { echo "render.sh: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# name | engine:voice | sox output options (rate, encoding, bits, channels)
while IFS='|' read -r name voice options; do
  [ -z "$name" ] && continue
  text=$(cat "$name.txt")
  case "$voice" in
    espeak:*) espeak-ng -v "${voice#espeak:}" -s 150 -w "$tmp/raw.wav" "$text" ;;
    flite:*)  flite -voice "${voice#flite:}" -t "$text" -o "$tmp/raw.wav" ;;
  esac
  # A short lead-in and tail of silence, as in real recordings.
  sox "$tmp/raw.wav" $options "$name.wav" pad 0.3 0.4
  echo "rendered $name.wav ($voice, $options)"
done <<'LIST'
01-welcome|espeak:en-us|-r 16000 -e signed-integer -b 16 -c 1
02-weather|flite:slt|-r 22050 -e signed-integer -b 24 -c 1
03-library|espeak:en-gb-x-rp|-r 44100 -e floating-point -b 32 -c 2
04-telephone|flite:awb|-r 8000 -e unsigned-integer -b 8 -c 1
LIST
