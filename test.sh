#!/usr/bin/env bash
# Runs every test of cf-orch on a fresh machine: unit, component (bunit) and in-process integration tests,
# the Playwright end-to-end tests in Debian's Chromium, and the packaging checks (compose.yaml, the Dockerfile's
# publish, the published app serving its dashboard). Installs Debian's chromium, docker-compose, docker.io and
# busybox-static when missing, and starts a Docker engine for the container tests when none answers (stopped again
# at the end, by its PID).
# Prints one closing line: "N passed, N failed". Exits non-zero when anything failed.
set -uo pipefail
cd "$(dirname "$0")"
root=$(pwd)
out="$root/artifacts"
mkdir -p "$out"
passed=0
failed=0
check() { # check NAME COMMAND...: one packaging check, counted in the closing line
  local name=$1; shift
  if "$@" >"$out/check.log" 2>&1; then
    passed=$((passed + 1)); echo "passed $name"
  else
    failed=$((failed + 1)); echo "failed $name"; sed 's/^/  /' "$out/check.log" | tail -40
  fi
}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. What the tests need from Debian: Chromium for Playwright (it cannot download its own browser here),
#    docker-compose to validate compose.yaml, a Docker engine and busybox-static (the container tests' image).
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} from Debian…"
  as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { echo "could not install ${missing[*]}"; echo "0 passed, 1 failed"; exit 1; }
fi

# 1b. A Docker engine for the container tests. One that already answers is used as it is; otherwise one is started
#     for this run with the NVIDIA container toolkit's shape (a no-op hook and an "nvidia" runtime alias), so GPU
#     device requests and runtime: nvidia are exercised for real. The tests are told an engine is required then: a
#     container test that cannot reach it fails instead of being skipped.
dockerd_pid=""
engine_answers() { docker info >/dev/null 2>&1; }
stop_engine() {
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    dockerd_pid=""
  fi
}
trap stop_engine EXIT
if ! engine_answers && command -v dockerd >/dev/null 2>&1; then
  hooks="$out/nvidia-hook"
  mkdir -p "$hooks"
  printf '#!/bin/sh\ncat >/dev/null\nexit 0\n' > "$hooks/nvidia-container-runtime-hook"
  chmod +x "$hooks/nvidia-container-runtime-hook"
  # Started directly (not through a function, which would fork a shell around it) so that $! is its PID (or sudo's).
  if [ "$(id -u)" -eq 0 ]; then
    PATH="$hooks:$PATH" dockerd --add-runtime "nvidia=$(command -v runc)" >"$out/dockerd.log" 2>&1 &
  else
    sudo env "PATH=$hooks:$PATH" dockerd --add-runtime "nvidia=$(command -v runc)" >"$out/dockerd.log" 2>&1 &
  fi
  dockerd_pid=$!
  for _ in $(seq 1 100); do engine_answers && break; sleep 0.2; done
  if engine_answers; then
    export CF_ORCH_REQUIRE_DOCKER=1
    echo "Started a Docker engine for the container tests (PID $dockerd_pid)."
  else
    echo "dockerd did not answer; the container tests are skipped with the reason. Its log:"; tail -20 "$out/dockerd.log"
  fi
fi

# 2. Build once, then every test project (xunit v3 on Microsoft.Testing.Platform).
if ! dotnet build CfOrch.Web.sln -c Release -nologo -v quiet; then
  echo "0 passed, 1 failed (the build failed)"; exit 1
fi
export CFORCH_SCREENSHOTS="$out/screenshots"
dotnet test --solution CfOrch.Web.sln -c Release --no-build 2>&1 | tee "$out/dotnet-test.log"
test_rc=${PIPESTATUS[0]}
suite_passed=$(awk '/^Test run summary/ {s=1} s && $1 == "succeeded:" {print $2; exit}' "$out/dotnet-test.log")
suite_failed=$(awk '/^Test run summary/ {s=1} s && $1 == "failed:" {print $2; exit}' "$out/dotnet-test.log")
passed=$((passed + ${suite_passed:-0}))
failed=$((failed + ${suite_failed:-0}))
if [ "$test_rc" -ne 0 ] && [ "${suite_failed:-0}" -eq 0 ]; then failed=$((failed + 1)); echo "failed: dotnet test exited with $test_rc"; fi

# 3. Packaging: what CI can check without a Docker engine.
check "compose.yaml is valid (docker-compose config)" docker-compose -f compose.yaml config -q
publish="$out/publish"
rm -rf "$publish"
case "$(uname -m)" in aarch64|arm64) arch=arm64 ;; *) arch=amd64 ;; esac
check "dotnet publish, as the Dockerfile runs it (ReadyToRun)" dotnet publish CfOrch.Web/CfOrch.Web.csproj -c Release -a "$arch" -o "$publish" -nologo -v quiet
check "the published app serves its dashboard and assets in Production" ./.ci/smoke-published "$publish"

# 4. The failed tests again, message and stack without their output, so the end of the log (all a CI tail shows) names them.
if [ "${suite_failed:-0}" -gt 0 ]; then
  echo "Failed tests:"
  awk '/^failed / { n = 0; grab = 1; print; next }
       grab && (/^  (Standard|Error) output/ || /^[^ ]/) { grab = 0 }
       grab && n < 20 { print; n++ }' "$out/dotnet-test.log"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
