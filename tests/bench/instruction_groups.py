"""Where a server's instructions go: GROUPS of libraries, for
instructions.py's share table.

Our own code is split in two: what protoc and grpc_cpp_plugin generated
(route_guide.pb.cc, health.grpc.pb.cc, ...) and the rest. A release build
has no debug information, so callgrind knows no source files; the split
is by function instead, from the symbols the generated objects define.

A release build links gRPC, protobuf and abseil into the server binary
(the static_grpc option), so there the object says nothing: a function of
the binary goes to its library by its C++ namespace (routeguide, grpc,
grpc_core, google::protobuf, absl), and a C function or a std:: template
by the static archive that defines it (ours first: a template our code
instantiates is ours).
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
# The first name of a mangled C++ function: _ZN[K]<len><name>..., or
# _Z<len><name> for one outside any namespace.
FIRST_NAME = re.compile(r"_ZN?[KVr]*(\d+)")
NAMESPACE_GROUPS = {"routeguide": OURS, "grpc": "gRPC", "grpc_core": "gRPC",
                    "grpc_event_engine": "gRPC", "grpc_impl": "gRPC",
                    "re2": "gRPC", "upb": "gRPC", "google": "protobuf",
                    "absl": "Abseil"}
# The archives a static_grpc build takes each group's code from.
STATIC_ARCHIVES = (
    ("gRPC", r"lib(grpc|grpc\+\+|grpc\+\+_reflection|gpr|address_sorting|upb|re2|cares)\.a"),
    ("protobuf", r"libprotobuf\.a"),
    ("Abseil", r"libabsl_\w+\.a"),
)
LIBRARY_DIR = "/usr/lib/x86_64-linux-gnu"


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


def first_name(mangled):
    """The outermost namespace (or class) of a mangled C++ name, or None."""
    found = FIRST_NAME.match(mangled)
    if found is None:
        return None
    length = int(found.group(1))
    return mangled[found.end():found.end() + length]


def own_functions(build):
    """What our own objects (not the generated ones) define."""
    ours = [os.path.join(build, "server", "librouteguide_server.a"),
            os.path.join(build, "common", "librouteguide_common.a"),
            os.path.join(build, "server", "routeguide-server.p", "main.cc.o")]
    return defined_text_symbols([p for p in ours if os.path.exists(p)])


def static_library_functions(library_dir=LIBRARY_DIR):
    """{group: functions its static archives define}, for a server that
    links them in."""
    try:
        names = os.listdir(library_dir)
    except OSError:
        return {}
    out = {}
    for group, pattern in STATIC_ARCHIVES:
        paths = [os.path.join(library_dir, n) for n in sorted(names)
                 if re.fullmatch(pattern, n)]
        out[group] = defined_text_symbols(paths)
    return out


class Grouping:
    """Sorts self costs into GROUPS: by object, and in the server binary by
    whether the function is generated code."""

    def __init__(self, server_binary, generated, mapped=(), ours=(),
                 static=None):
        self.server_binary = server_binary
        self.generated = generated
        # For a binary with the libraries linked in: our own functions, and
        # {group: functions} of the static archives.
        self.ours = ours
        self.static = static or {}
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
            if name in self.generated:
                return GENERATED
            return self.group_in_binary(name)
        if GRPC_OBJECT.match(base):
            return "gRPC"
        if base.startswith("libprotobuf"):
            return "protobuf"
        if base.startswith("libabsl_"):
            return "Abseil"
        if SYSTEM_OBJECT.match(base):
            return "libc/system"
        return "other"

    def group_in_binary(self, name):
        """The group of a function of the server binary."""
        group = NAMESPACE_GROUPS.get(first_name(name) or "")
        if group is not None:
            return group
        if name in self.ours:
            return OURS
        for library, functions in self.static.items():
            if name in functions:
                return library
        # Not in any archive linked in: the binary's own start-up code,
        # or (without static libraries) ours.
        return OURS if not self.static else "other"

    def costs(self, profile):
        out = dict.fromkeys(GROUPS, 0)
        for (obj, _, function), cost in profile.self_costs.items():
            out[self.group(obj, function)] += cost
        return out
