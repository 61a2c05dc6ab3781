#!/usr/bin/env bash
# Apache Spark's JVM runtime (the `jvm` engine and its tests) needs Java 17+. Install Debian's
# headless JRE when no java is on PATH. Idempotent: does nothing when java is there.
set -euo pipefail
if command -v java >/dev/null; then exit 0; fi
echo "java not found: installing Debian's openjdk-17-jre-headless"
sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq openjdk-17-jre-headless >/dev/null
