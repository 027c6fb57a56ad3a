#!/usr/bin/env python3
"""Builds go-baseline-server (server.go) with Debian's Go toolchain and the
Go packages Debian installs under /usr/share/gocode (golang-google-grpc-dev
and what it depends on), offline, in GOPATH mode. The protobuf code comes
from protos/route_guide.proto through protoc-gen-go built from the same
tree (its plugins=grpc mode, which is what grpc-go 1.33 was generated with).

  build.py OUTPUT PRIVATE_DIR PROTOC ROUTE_GUIDE_PROTO SERVER_GO DATABASE_JSON

Everything it writes goes under PRIVATE_DIR (a meson build directory's
private dir), except OUTPUT.
"""
import os
import shutil
import subprocess
import sys

GOCODE = "/usr/share/gocode"
PACKAGE = "routeguide_go"


def run(command, env):
    result = subprocess.run(command, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.stderr.write(" ".join(command) + "\n" + result.stdout)
        sys.exit(1)


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    output, private, protoc, proto, server_go, database = sys.argv[1:]
    private = os.path.abspath(private)
    gopath = os.path.join(private, "gopath")
    source = os.path.join(gopath, "src", PACKAGE)
    if os.path.exists(source):
        shutil.rmtree(source)
    os.makedirs(os.path.join(source, "routeguide"))
    os.makedirs(os.path.join(source, "go-baseline-server"))
    env = dict(os.environ, GO111MODULE="off", GOPROXY="off", GOFLAGS="",
               CGO_ENABLED="0", GOPATH=gopath + ":" + GOCODE,
               GOCACHE=os.path.join(private, "gocache"))
    plugin = os.path.join(private, "protoc-gen-go")
    run(["go", "build", "-o", plugin, "github.com/golang/protobuf/protoc-gen-go"], env)
    run([protoc, f"--plugin=protoc-gen-go={plugin}",
         "--go_out=plugins=grpc,paths=source_relative:" +
         os.path.join(source, "routeguide"),
         "-I", os.path.dirname(os.path.abspath(proto)),
         os.path.basename(proto)], env)
    main_dir = os.path.join(source, "go-baseline-server")
    shutil.copy(server_go, os.path.join(main_dir, "main.go"))
    # Embedded (//go:embed), as our servers embed it.
    shutil.copy(database, os.path.join(main_dir, "route_guide_db.json"))
    run(["go", "build", "-trimpath", "-o", os.path.abspath(output),
         PACKAGE + "/go-baseline-server"], env)


if __name__ == "__main__":
    main()
