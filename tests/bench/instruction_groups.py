"""Where a server's instructions go: GROUPS of libraries, for
instructions.py's share table.

Our own code is split in two: what protoc and grpc_cpp_plugin generated
(route_guide.pb.cc, health.grpc.pb.cc, ...) and the rest. A release build
has no debug information, so callgrind knows no source files; the split
is by function instead, from the symbols the generated objects define.
"""

import os
import re
import subprocess

GENERATED = "ours: generated (*.pb.cc)"
OURS = "ours: the rest"
GROUPS = (GENERATED, OURS, "gRPC", "protobuf", "Abseil", "libc/system", "other")
# gRPC and the libraries only it brings in (c-ares for DNS, re2, upb).
GRPC_OBJECT = re.compile(r"lib(grpc|gpr|address_sorting|upb|re2|cares)(?=[._+-])")
SYSTEM_OBJECT = re.compile(
    r"(libc|libm|libstdc\+\+|libgcc_s|libpthread|libdl|librt|ld-linux[^/]*)\.so")
TEXT_SYMBOL_TYPES = set("TtWwi")


def defined_text_symbols(paths):
    """Mangled names of the functions that object files or archives define."""
    names = set()
    for path in paths:
        out = subprocess.run(["nm", "--defined-only", path], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=60)
        for line in out.stdout.splitlines():
            words = line.split()
            if len(words) == 3 and words[1] in TEXT_SYMBOL_TYPES:
                names.add(words[2])
    return names


def generated_functions(build):
    """The functions of protoc's and grpc_cpp_plugin's code in the server:
    defined in protos/librouteguide_proto.a and not in our own objects (an
    inline function both instantiate counts as ours). A release build has
    no debug information, so no file names; symbols are what is left."""
    generated = os.path.join(build, "protos", "librouteguide_proto.a")
    if not os.path.exists(generated):
        return set()
    ours = [os.path.join(build, "server", "librouteguide_server.a"),
            os.path.join(build, "common", "librouteguide_common.a"),
            os.path.join(build, "server", "routeguide-server.p", "main.cc.o")]
    return (defined_text_symbols([generated]) -
            defined_text_symbols([p for p in ours if os.path.exists(p)]))


class Grouping:
    """Sorts self costs into GROUPS: by object, and in the server binary by
    whether the function is generated code."""

    def __init__(self, server_binary, generated, mapped=()):
        self.server_binary = server_binary
        self.generated = generated
        # (start, end, path): names the object of an address callgrind
        # left as "???" (PLT stubs, named by address).
        self.mapped = mapped

    def object_of(self, obj, function):
        if obj in ("???", "") and re.fullmatch(r"0x[0-9a-f]+('\d+)?", function):
            address = int(function.split("'")[0], 16)
            for start, end, path in self.mapped:
                if start <= address < end:
                    return path
        return obj

    def group(self, obj, function):
        obj = self.object_of(obj, function)
        base = os.path.basename(obj)
        if base == os.path.basename(self.server_binary):
            # Callgrind marks recursion levels as name'2.
            name = re.sub(r"'\d+$", "", function)
            return GENERATED if name in self.generated else OURS
        if GRPC_OBJECT.match(base):
            return "gRPC"
        if base.startswith("libprotobuf"):
            return "protobuf"
        if base.startswith("libabsl_"):
            return "Abseil"
        if SYSTEM_OBJECT.match(base):
            return "libc/system"
        return "other"

    def costs(self, profile):
        out = dict.fromkeys(GROUPS, 0)
        for (obj, _, function), cost in profile.self_costs.items():
            out[self.group(obj, function)] += cost
        return out
