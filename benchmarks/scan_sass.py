"""What a selective-scan CUDA kernel costs per architecture, read from its SASS (no GPU needed).

For each kernel source and each architecture the script compiles a cubin with the flags of the
real build (``nvcc -O3 -std=c++17``, see export/CMakeLists.txt and export/torch_binding/
scan_ctypes.py) and reports, for every kernel function (one per template instantiation):

1. resources, from ``-Xptxas -v``: registers per thread, static shared memory, stack frame,
   spill stores/loads, named barriers; the block size from ``__launch_bounds__`` (the cubin's
   EIATTR_MAX_THREADS) or ``--block-size``;
2. occupancy: blocks/SM, warps/SM, % of the SM's warp slots and the limiting factor, computed
   as the CUDA toolkit's occupancy calculator (cuda_occupancy.h) does, from the per-SM limits in
   ARCH_LIMITS below (defaults: carveout, no partitioned caching);
3. the loops of the SASS (``nvdisasm -gi``): a loop is a backward branch, i.e. a BRA (BRX,
   JMP...) whose target label is before the branch (a branch to itself, ptxas's idle loop after
   the last EXIT, is none); its body is the address range from the target to the last backward
   branch to it, nested loops included. For each loop: the static instruction count and the
   counts by class (CLASS_ORDER: fp32, mufu by op, shared and global with widths, shuffle,
   integer, convert...). Counts are static: a predicated instruction counts once, whether or not
   its predicate is true (it takes an issue slot either way);
4. the inner recurrence loop(s) and their cost per (channel, time, state) update: instructions
   of the loop body / updates per iteration, by class.

Which loop is the inner loop, and how many updates one pass of it performs, the SASS cannot say.
The kernel source says it with a marker, a comment line of its own at most 5 lines above the loop
statement:

    // cvgl-sass: updates-per-iteration=4
    #pragma unroll 4
    for (int s = 0; s < len; ++s) { ... }

``updates-per-iteration`` is the number of (c, t, n) updates ONE THREAD performs in one pass of
the loop AS COMPILED (after unrolling): 4 for a loop over time unrolled 4 times whose thread owns
one (channel, state) pair; 16 x 2 for a thread that owns 16 states and a loop unrolled twice.
"instr/update" is then the loop's instructions / that number = the SASS instructions one thread
issues per update = warp instructions (issue slots) per 32 updates when all 32 lanes do distinct
updates. The SASS loop that is the marked one is found through line info (a second compile with
``-lineinfo``, checked to give the same SASS): the outermost SASS loop whose backward branch
ptxas attributes to a line of the marked statement (its for/while line, normally); several such
loops (a remainder loop after an unrolled one, copies specialised on a condition): the largest is
reported, the others are named in a note. A kernel without a marker (an old revision) takes
``--loop-line LABEL=LINE`` (the line of its loop statement) and ``--updates LABEL=N``; with
neither, the innermost loop with the most MUFU.EX2 is reported as the inner loop (said so in a
note) and the per-update figures need ``--updates``. The report lists the MUFU.EX2 per update
beside the figure: 1.0 for a kernel that takes one exp per update, a cheap check of the
updates-per-iteration value.

Kernels: ``--kernel LABEL=SOURCE[@FLAG...]``, repeated. SOURCE is a file, or ``REV:PATH`` (git
revision and repository-relative path, read with ``git show``; every ``#include "..."`` beside it
is read from the same revision into the same temporary folder). Each ``@FLAG`` (starting with
``-``) is one extra nvcc argument for that kernel only: ``new-soft4=export/csrc/
selective_scan_kernel.cu@-DCVGL_SCAN_SOFT_EXP_STATES=4``. Per-kernel settings take
``[LABEL=]VALUE`` (no label: every kernel): ``--dynamic-smem``, ``--block-size``, ``--updates``,
``--loop-line``.

    python benchmarks/scan_sass.py --kernel old=HEAD:export/csrc/selective_scan_kernel.cu \\
        --kernel new=export/csrc/selective_scan_kernel.cu --arch 87,89,90 \\
        --out benchmarks/results/scan_sass_vm_YYYYMMDD

Needs nvcc and nvdisasm (``pip install nvidia-cuda-nvdisasm`` gives one; ``--nvdisasm`` or
$NVDISASM point at another). Bad input (a missing file or revision, an unknown arch, no nvcc or
nvdisasm, a kernel that does not compile) ends with one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from cvgl_edge.bench.machine import machine_info  # noqa: E402
from cvgl_edge.bench.occupancy import ARCH_LIMITS, ARCH_NAMES, KB, ArchLimits, occupancy  # noqa: E402
from cvgl_edge.errors import CvglError  # noqa: E402
from cvgl_edge.export.plugin.toolchain import cuda_root, find_nvcc  # noqa: E402
from cvgl_edge.io import atomic_write, atomic_write_json, check_output_file  # noqa: E402

#: The flags of the real build (export/CMakeLists.txt: -O3, C++17; scan_ctypes.py: the same);
#: -Xptxas -v prints the resource usage. Host-only flags (-fPIC, -fvisibility) change no SASS.
NVCC_FLAGS = ("-O3", "-std=c++17", "-cubin", "-Xptxas", "-v")


class UsageError(Exception):
    """Bad input: reported as one ``error:`` line, exit code 2."""


# --------------------------------------------------------------------------------------------
# Per-SM limits
# --------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------
# SASS parsing and classification
# --------------------------------------------------------------------------------------------

@dataclass
class Instr:
    addr: int
    opcode: str            # with modifiers: "LDS.64", "MUFU.EX2", "IMAD.MOV.U32"
    operands: str = ""
    pred: str = ""         # "@!P2", "" when unpredicated
    annotation: str = ""   # nvdisasm's (*"..."*) after the ';'
    locs: tuple[tuple[str, int], ...] = ()  # source (file, line): innermost first, then inlined-at

    @property
    def base(self) -> str:
        return self.opcode.split(".", 1)[0]

    @property
    def modifiers(self) -> list[str]:
        return self.opcode.split(".")[1:]


@dataclass
class Function:
    name: str                                   # mangled
    instrs: list[Instr] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    max_threads: int | None = None              # EIATTR_MAX_THREADS (x*y*z), from __launch_bounds__
    shared_section: int | None = None           # size of .nv.shared.<name>


_SECTION = re.compile(r"^\s*\.section\s+([^,\s]+)")
_LABEL = re.compile(r"^\s*([.$\w]+):\s*$")
_INSTR = re.compile(r"^\s*/\*([0-9a-fA-F]+)\*/\s+([^;]*?)\s*;(.*)$")
_LOC = re.compile(r'"([^"]+)",\s*line\s+(\d+)')
_PRED = re.compile(r"^(@!?U?P(?:T|\d+))\s+(.*)$")
_TARGET = re.compile(r"`\(([^)]+)\)")
_HEX_TARGET = re.compile(r"(?:^|[\s,])(0x[0-9a-fA-F]+)\s*$")
_ANNOTATION = re.compile(r'\(\*"(.*)"\*\)')
_WORD = re.compile(r"^\s*/\*[0-9a-fA-F]+\*/\s+\.word\s+(0x[0-9a-fA-F]+)")
_ZERO = re.compile(r"^\s*\.zero\s+(\d+)")

#: branches whose targets are jumps (BSSY names a reconvergence point, CALL a subroutine)
JUMPS = {"BRA", "BRX", "BRXU", "JMP", "JMX", "JMXU"}


def parse_instruction(addr: int, text: str, tail: str = "") -> Instr:
    annotation = _ANNOTATION.search(text) or _ANNOTATION.search(tail)
    text = _ANNOTATION.sub("", text).strip()
    pred = ""
    match = _PRED.match(text)
    if match:
        pred, text = match.group(1), match.group(2)
    opcode, _, operands = text.partition(" ")
    return Instr(addr, opcode, operands.strip(), pred, annotation.group(1) if annotation else "")


def parse_sass(text: str) -> list[Function]:
    """The code sections of nvdisasm output (with or without -c; -g/-gi line comments are read;
    cuobjdump-style absolute branch targets are understood too), plus each function's
    EIATTR_MAX_THREADS and .nv.shared size where the output has them."""
    functions: dict[str, Function] = {}
    order: list[str] = []
    current: Function | None = None
    section = ""
    pending: list[str] = []
    locs: tuple[tuple[str, int], ...] = ()
    loc_run = False
    info_fn: Function | None = None
    info_attr = ""
    words: list[int] = []

    def get(name: str) -> Function:
        if name not in functions:
            functions[name] = Function(name)
            order.append(name)
        return functions[name]

    def close_text() -> None:
        nonlocal pending
        if current is not None and pending:
            end = current.instrs[-1].addr + 16 if current.instrs else 0
            for label in pending:
                current.labels[label] = end
        pending = []

    for line in text.splitlines():
        sec = _SECTION.match(line)
        if sec:
            close_text()
            section = sec.group(1)
            current, info_fn, info_attr, locs = None, None, "", ()
            if section.startswith(".text."):
                current = get(section[len(".text."):])
            elif section.startswith(".nv.info."):
                info_fn = get(section[len(".nv.info."):])
            elif section.startswith(".nv.shared.") and not section.startswith(".nv.shared.reserved"):
                get(section[len(".nv.shared."):]).shared_section = 0
            continue
        if info_fn is not None:
            if "nvinfo :" in line:
                info_attr, words = line.split("nvinfo :", 1)[1].strip(), []
            elif info_attr == "EIATTR_MAX_THREADS":
                word = _WORD.match(line)
                if word:
                    words.append(int(word.group(1), 16))
                    if len(words) == 3:
                        info_fn.max_threads = words[0] * words[1] * words[2]
            continue
        if section.startswith(".nv.shared.") and not section.startswith(".nv.shared.reserved"):
            zero = _ZERO.match(line)
            if zero:
                functions[section[len(".nv.shared."):]].shared_section = int(zero.group(1))
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("//##"):  # consecutive ones (-gi: the inlined chain, then the caller) add up
            found = tuple((f, int(n)) for f, n in _LOC.findall(stripped))
            locs = locs + found if loc_run else found
            loc_run = True
            continue
        loc_run = False
        ins = _INSTR.match(line)
        if ins:
            instr = parse_instruction(int(ins.group(1), 16), ins.group(2), ins.group(3))
            instr.locs = locs
            for label in pending:
                current.labels[label] = instr.addr
            pending = []
            current.instrs.append(instr)
            continue
        lab = _LABEL.match(line)
        if lab and not lab.group(1).startswith(".text."):
            pending.append(lab.group(1))
    close_text()
    return [functions[name] for name in order if functions[name].instrs]


def branch_targets(instr: Instr, labels: dict[str, int]) -> list[int]:
    """Addresses a jump instruction may go to (empty for anything else)."""
    if instr.base not in JUMPS:
        return []
    names = _TARGET.findall(instr.operands)
    if "BRANCH_TARGETS" in instr.annotation:
        names += re.findall(r"[.$\w]+", instr.annotation.split("BRANCH_TARGETS", 1)[1])
    addrs = [labels[n] for n in names if n in labels]
    if not names and instr.base in ("BRA", "JMP"):  # cuobjdump -sass: absolute addresses
        hex_target = _HEX_TARGET.search(instr.operands)
        if hex_target:
            addrs.append(int(hex_target.group(1), 16))
    return addrs


#: Class of each opcode (before the first '.'). Exceptions, by modifiers or operands: HADD2.F32
#: (an fp16 -> fp32 conversion) is "convert"; HFMA2.MMA Rd, -RZ, RZ, imm, imm (how ptxas loads a
#: constant) is "move"; IMAD.MOV and friends stay "integer" (they issue on the integer/FMA pipe).
CLASS_OPCODES: dict[str, tuple[str, ...]] = {
    "fp32": ("FFMA", "FMUL", "FADD", "FMNMX", "FSEL", "FSET", "FSETP", "FCHK", "FRND", "FSWZADD",
             "FFMA32I", "FMUL32I", "FADD32I", "FCMP"),
    "fp16": ("HFMA2", "HADD2", "HMUL2", "HMNMX2", "HSET2", "HSETP2"),
    "fp64": ("DFMA", "DADD", "DMUL", "DMNMX", "DSETP", "DSET"),
    "mufu": ("MUFU",),
    "shared": ("LDS", "STS", "LDSM", "STSM", "ATOMS"),
    "shuffle": ("SHFL", "VOTE", "VOTEU", "MATCH", "REDUX"),
    "global": ("LDG", "STG", "LD", "ST", "ATOM", "ATOMG", "RED", "LDGSTS"),
    "local": ("LDL", "STL"),
    "integer": ("IMAD", "IADD3", "IADD", "IADD32I", "LEA", "LOP3", "LOP", "LOP32I", "SHF", "SHL", "SHR",
                "ISETP", "ICMP", "IMNMX", "VIMNMX", "VIMNMX3", "VIADD", "VIADDMNMX", "SEL", "IABS",
                "POPC", "FLO", "BREV", "BMSK", "SGXT", "IDP", "IMUL", "XMAD", "ISCADD", "BFE", "BFI",
                "IMNMX3", "IADD2"),
    "convert": ("F2F", "F2I", "I2F", "I2FP", "F2IP", "F2FP", "I2I", "I2IP", "PRMT"),
    "move": ("MOV", "MOV32I", "CS2R"),
    "sync": ("BAR", "BSSY", "BSYNC", "BMOV", "WARPSYNC", "MEMBAR", "DEPBAR", "ERRBAR", "YIELD",
             "NANOSLEEP", "SYNCS", "ARRIVES", "LDGDEPBAR", "CCTL"),
    "branch": ("BRA", "BRX", "BRXU", "JMP", "JMX", "JMXU", "CALL", "RET", "EXIT", "BREAK", "BPT", "KILL"),
}
CLASS_ORDER = ("fp32", "fp16", "fp64", "mufu", "shared", "shuffle", "global", "local", "integer",
               "convert", "move", "uniform", "sync", "branch", "other")
_CLASS_OF = {op: cls for cls, ops in CLASS_OPCODES.items() for op in ops}
_MEMORY = ("shared", "global", "local")


def width(instr: Instr) -> int:
    """Bits per thread a load/store moves: .128, .64, .U16/.S16, .U8/.S8, else 32."""
    mods = set(instr.modifiers)
    for bits, names in ((128, {"128"}), (64, {"64"}), (16, {"U16", "S16", "16"}), (8, {"U8", "S8", "8"})):
        if mods & names:
            return bits
    return 32


def classify(instr: Instr) -> tuple[str, str]:
    """(class, detail): the detail is the MUFU op ("EX2"), the memory op with its width
    ("LDS.64", "LDG.16"), else the base opcode."""
    base = instr.base
    if base == "HADD2" and "F32" in instr.modifiers:
        return "convert", "HADD2.F32"
    if base == "HFMA2" and re.match(r"^\S+,\s*-RZ,\s*RZ,", instr.operands):
        return "move", "HFMA2.MMA(mov)"
    cls = _CLASS_OF.get(base)
    if cls is None:
        cls = "uniform" if base.startswith("U") or base in ("R2UR", "S2UR") else "other"
    if cls == "mufu":
        return cls, instr.modifiers[0] if instr.modifiers else "MUFU"
    if cls in _MEMORY and base not in ("LDSM", "STSM", "ATOMS", "ATOM", "ATOMG", "RED", "LDGSTS"):
        return cls, f"{base}.{width(instr)}"
    return cls, base


def count_classes(instrs: list[Instr]) -> dict:
    classes: Counter = Counter()
    details: dict[str, Counter] = {}
    for instr in instrs:
        cls, detail = classify(instr)
        classes[cls] += 1
        details.setdefault(cls, Counter())[detail] += 1
    return {"classes": {c: classes[c] for c in CLASS_ORDER if classes[c]},
            "details": {c: dict(sorted(details[c].items(), key=lambda kv: (-kv[1], kv[0])))
                        for c in CLASS_ORDER if c in details}}


@dataclass
class Loop:
    start: int                  # address of the target label (the loop header)
    end: int                    # address of the last backward branch to it
    header: str                 # its label
    back_edges: list[int]
    instrs: list[Instr]
    depth: int = 0              # loops around it
    contains: list[int] = field(default_factory=list)  # starts of loops inside it
    overlaps: list[int] = field(default_factory=list)  # loops that cross it (neither nests)

    @property
    def innermost(self) -> bool:
        return not self.contains

    def mufu(self, op: str) -> int:
        return sum(1 for i in self.instrs if i.base == "MUFU" and op in i.modifiers)


def find_loops(fn: Function) -> list[Loop]:
    """Backward branches: a jump whose target is at or before it. One loop per target label,
    from the label to the last branch back to it. A branch to itself (the idle loop ptxas puts
    after the last EXIT) is not a loop."""
    names = {addr: name for name, addr in fn.labels.items()}
    edges: dict[int, list[int]] = {}
    for instr in fn.instrs:
        for target in branch_targets(instr, fn.labels):
            if target < instr.addr:
                edges.setdefault(target, []).append(instr.addr)
    loops = []
    for start, sources in sorted(edges.items()):
        end = max(sources)
        body = [i for i in fn.instrs if start <= i.addr <= end]
        loops.append(Loop(start, end, names.get(start, f"0x{start:x}"), sorted(sources), body))
    for outer in loops:
        for inner in loops:
            if inner is outer:
                continue
            if outer.start <= inner.start and inner.end <= outer.end:
                outer.contains.append(inner.start)
                inner.depth += 1
            elif outer.start < inner.start <= outer.end < inner.end or inner.start < outer.start <= inner.end < outer.end:
                outer.overlaps.append(inner.start)
    return loops


def main_line(instr: Instr, source: str) -> int | None:
    """The line of ``source`` this instruction comes from: through inlining, the outermost one (the
    call site in the kernel body, not the line of an inlined helper of the same file)."""
    lines = [line for file, line in instr.locs if _same_source(file, source)]
    return lines[-1] if lines else None


def _same_source(file: str, source: str) -> bool:
    try:
        return Path(file).resolve() == Path(source).resolve()
    except OSError:
        return file == source


def source_lines(loop: Loop, source: str) -> tuple[int, int] | None:
    lines = [n for n in (main_line(i, source) for i in loop.instrs) if n is not None]
    return (min(lines), max(lines)) if lines else None


def loops_for_source_range(loops: list[Loop], source: str, first: int, last: int) -> list[Loop]:
    """The SASS loops of the source loop statement on lines [first, last], largest first: the
    outermost loops with a backward branch from those lines (ptxas attributes a loop's back edge
    to its for/while line). Several: a remainder loop after an unrolled one, or copies of the
    loop specialised on a condition. None found that way: the innermost loops most of whose
    source-attributed instructions lie in the lines."""
    by_start = {loop.start: loop for loop in loops}
    chosen = []
    for loop in loops:
        edges = [i for i in loop.instrs if i.addr in loop.back_edges]
        if any(first <= (main_line(i, source) or 0) <= last for i in edges):
            chosen.append(loop)
    starts = {loop.start for loop in chosen}
    chosen = [loop for loop in chosen  # drop those inside another chosen loop
              if not any(loop.start in by_start[s].contains for s in starts if s != loop.start)]
    if not chosen:
        for loop in loops:
            lines = [n for n in (main_line(i, source) for i in loop.instrs) if n is not None]
            inside = sum(1 for n in lines if first <= n <= last)
            if lines and inside and inside * 2 >= len(lines):
                chosen.append(loop)
        starts = {loop.start for loop in chosen}
        chosen = [loop for loop in chosen if not starts.intersection(loop.contains)]
    return sorted(chosen, key=lambda loop: (-len(loop.instrs), loop.start))


def hottest_loops(loops: list[Loop]) -> list[Loop]:
    """No marker: the innermost loops with the most MUFU.EX2, largest first."""
    candidates = [loop for loop in loops if loop.innermost and loop.mufu("EX2")]
    if not candidates:
        return []
    most = max(loop.mufu("EX2") for loop in candidates)
    return sorted((loop for loop in candidates if loop.mufu("EX2") == most),
                  key=lambda loop: (-len(loop.instrs), loop.start))


# --------------------------------------------------------------------------------------------
# Markers in the kernel source
# --------------------------------------------------------------------------------------------

_MARKER = re.compile(r"^\s*//\s*cvgl-sass:\s*(.*)$")  # a comment line of its own
_LOOP_KEYWORD = re.compile(r"\b(for|while|do)\b")


def _code_lines(text: str) -> list[str]:
    """The source lines with comments and string literals blanked (line count kept)."""
    i, n = 0, len(text)
    buf = []
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            buf.append("\n" * text.count("\n", i, end))
            i = end
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            buf.append(" ")
            i = j + 1
            continue
        buf.append(c)
        i += 1
    return "".join(buf).split("\n")


def loop_extent(text: str, line: int) -> tuple[int, int]:
    """Lines (1-based) of the loop statement that starts on ``line``: to its closing brace, or to
    the end of its single statement."""
    code = _code_lines(text)
    if not 1 <= line <= len(code):
        raise UsageError(f"line {line} is outside the source ({len(code)} lines)")
    match = _LOOP_KEYWORD.search(code[line - 1])
    if not match:
        raise UsageError(f"line {line} has no for/while/do statement")
    flat = "\n".join(code[line - 1:])
    pos = match.end()
    depth_paren = 0
    if match.group(1) != "do":  # skip the (...) header
        pos = flat.find("(", pos)
        while pos < len(flat):
            depth_paren += {"(": 1, ")": -1}.get(flat[pos], 0)
            pos += 1
            if depth_paren == 0:
                break
    rest = flat[pos:]
    brace = re.search(r"\S", rest)
    if brace and brace.group(0) == "{":
        depth, k = 0, pos + brace.start()
        while k < len(flat):
            depth += {"{": 1, "}": -1}.get(flat[k], 0)
            if depth == 0:
                return line, line + flat.count("\n", 0, k)
            k += 1
        return line, len(code)
    semi = flat.find(";", pos)
    return line, line + flat.count("\n", 0, max(semi, pos))


@dataclass
class LoopSpec:
    """The inner loop as the kernel source (or the command line) names it."""

    first: int | None     # source lines of the loop statement (None: find it by the heuristic)
    last: int | None
    updates: float | None  # (c, t, n) updates per thread per pass of the compiled loop
    origin: str           # "marker at line N", "--loop-line N", "heuristic"


def read_markers(text: str) -> list[LoopSpec]:
    specs = []
    lines = text.split("\n")
    code = _code_lines(text)
    for number, line in enumerate(lines, 1):
        match = _MARKER.search(line)
        if not match:
            continue
        values = dict(re.findall(r"([\w-]+)=(\S+)", match.group(1)))
        if "updates-per-iteration" not in values:
            raise UsageError(f"line {number}: cvgl-sass marker without updates-per-iteration=N")
        try:
            updates = float(values["updates-per-iteration"])
        except ValueError:
            raise UsageError(f"line {number}: updates-per-iteration must be a number") from None
        if updates <= 0:
            raise UsageError(f"line {number}: updates-per-iteration must be positive")
        for k in range(number, min(number + 6, len(code) + 1)):
            if _LOOP_KEYWORD.search(code[k - 1]):
                first, last = loop_extent(text, k)
                specs.append(LoopSpec(first, last, updates, f"marker at line {number}"))
                break
        else:
            raise UsageError(f"line {number}: cvgl-sass marker not followed by a for/while/do within 5 lines")
    return specs


# --------------------------------------------------------------------------------------------
# Kernels, tools, compilation
# --------------------------------------------------------------------------------------------

@dataclass
class Kernel:
    label: str
    spec: str                 # the --kernel value as given
    spec_source: str          # its SOURCE part: a file or REV:PATH
    flags: list[str] = field(default_factory=list)  # extra nvcc arguments (the @-FLAG parts)
    path: str = ""            # file as given, or the repository path of REV:PATH
    revision: str | None = None  # the commit of REV:PATH
    source: Path = Path()     # the file compiled (a temporary copy for REV:PATH)
    text: str = ""
    dynamic_smem: int = 0
    block_size: int | None = None
    updates: float | None = None
    loop_line: int | None = None
    loop_specs: list[LoopSpec] = field(default_factory=list)


_LABEL_OK = re.compile(r"^[A-Za-z0-9_.+-]+$")


def parse_kernel_spec(spec: str) -> tuple[str, str, list[str]]:
    """LABEL=SOURCE[@-FLAG...] -> (label, source, flags). '@' starts a flag only before a '-', so a
    revision such as HEAD@{1}:path stays whole."""
    label, eq, rest = spec.partition("=")
    if not eq or not rest:
        raise UsageError(f"--kernel {spec!r}: give LABEL=SOURCE[@-FLAG...]")
    if not _LABEL_OK.match(label):
        raise UsageError(f"--kernel {spec!r}: the label may hold letters, digits, '_', '.', '+' and '-'")
    parts = re.split(r"@(?=-)", rest)
    return label, parts[0], parts[1:]


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)


def git_toplevel() -> Path:
    out = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    return Path(out.stdout.strip()) if out.returncode == 0 else ROOT


_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def load_kernel(kernel: Kernel, workdir: Path) -> None:
    """Reads the source; a REV:PATH source is written with its local includes into ``workdir``."""
    given = Path(kernel.spec_source)
    if given.is_file():
        kernel.source = given.resolve()
        kernel.path = str(given)
        kernel.text = given.read_text()
        return
    if ":" not in kernel.spec_source:
        raise UsageError(f"kernel {kernel.label}: no such file: {kernel.spec_source}")
    rev, path = kernel.spec_source.split(":", 1)
    repo = git_toplevel()
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not rev or not path:
        raise UsageError(f"kernel {kernel.label}: no such file: {kernel.spec_source}")
    if commit.returncode != 0:
        raise UsageError(f"kernel {kernel.label}: no file {kernel.spec_source!r} and no revision {rev!r} in {repo}")
    kernel.revision = commit.stdout.strip()
    path = path.lstrip("/")
    shown = _git(repo, "show", f"{kernel.revision}:{path}")
    if shown.returncode != 0:
        raise UsageError(f"kernel {kernel.label}: {path} does not exist at {rev} ({kernel.revision[:12]})")
    kernel.path = path
    kernel.text = shown.stdout
    folder = workdir / kernel.label
    folder.mkdir(parents=True)
    kernel.source = folder / Path(path).name
    kernel.source.write_text(kernel.text)
    todo, seen = [(Path(path).parent, kernel.text)], set()
    while todo:  # the quoted includes beside it, and theirs, at the same revision
        base, text = todo.pop()
        for name in _INCLUDE.findall(text):
            rel = (base / name).as_posix()
            if rel in seen or ".." in Path(name).parts:
                continue
            seen.add(rel)
            got = _git(repo, "show", f"{kernel.revision}:{rel}")
            if got.returncode == 0:
                dest = folder / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(got.stdout)
                todo.append(((base / name).parent, got.stdout))


def find_nvdisasm(nvcc: Path | None, explicit: str | None) -> Path | None:
    """--nvdisasm, $NVDISASM, PATH, the toolkit of nvcc, then the pip wheel nvidia-cuda-nvdisasm
    (site-packages/nvidia/cu13/bin/nvdisasm; cu12 wheels: nvidia/cuda_nvdisasm/bin)."""
    candidates: list[Path] = []
    for given in (explicit, os.environ.get("NVDISASM")):
        if given:
            candidates.append(Path(given))
    which = shutil.which("nvdisasm")
    if which:
        candidates.append(Path(which))
    if nvcc is not None:
        candidates += [nvcc.resolve().parent / "nvdisasm", cuda_root(nvcc) / "bin" / "nvdisasm"]
    spec = importlib.util.find_spec("nvidia")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidates += sorted(Path(folder).glob("*/bin/nvdisasm"), reverse=True)
    if explicit:  # named explicitly: that one or nothing
        candidates = candidates[:1]
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def tool_version(tool: Path) -> str:
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if "release" in line:
            return line.strip()
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else "unknown"


def nvcc_architectures(nvcc: Path) -> set[int]:
    out = subprocess.run([str(nvcc), "--list-gpu-arch"], capture_output=True, text=True)
    return {int(m) for m in re.findall(r"compute_(\d+)", out.stdout)}


def nvcc_command(nvcc: Path, kernel: Kernel, arch: int, out: Path, extra: list[str], lineinfo: bool) -> list[str]:
    cmd = [str(nvcc), *NVCC_FLAGS, "-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    if lineinfo:
        cmd.append("-lineinfo")
    return cmd + [*extra, *kernel.flags, "-o", str(out), str(kernel.source)]


def compile_and_disassemble(nvcc: Path, nvdisasm: Path, kernel: Kernel, arch: int, extra: list[str],
                            workdir: Path) -> dict:
    """Two cubins: the build's flags (resources, SASS counted) and the same with -lineinfo (line
    attribution only, used when its SASS is the same instruction for instruction)."""
    results = {}
    for lineinfo in (False, True):
        cubin = workdir / f"{kernel.label}.sm_{arch}{'.lineinfo' if lineinfo else ''}.cubin"
        cmd = nvcc_command(nvcc, kernel, arch, cubin, extra, lineinfo)
        built = subprocess.run(cmd, capture_output=True, text=True, cwd=kernel.source.parent)
        if built.returncode != 0:
            errors = [ln for ln in built.stderr.splitlines() if "error" in ln.lower()] or built.stderr.splitlines()
            first = errors[0].strip() if errors else f"exit code {built.returncode}"
            raise UsageError(f"kernel {kernel.label} does not compile for sm_{arch}: {first}")
        sass = subprocess.run([str(nvdisasm), "-gi", str(cubin)], capture_output=True, text=True)
        if sass.returncode != 0:
            raise UsageError(f"nvdisasm failed on sm_{arch} cubin of {kernel.label}: {sass.stderr.strip()[:200]}")
        results[lineinfo] = (cmd, built.stderr, sass.stdout)
    return {"command": results[False][0], "ptxas": results[False][1], "sass": results[False][2],
            "sass_lineinfo": results[True][2]}


_PTX_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\w+)'")
_PTX_PROPS = re.compile(r"Function properties for (\S+)")
_PTX_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_ptxas(text: str) -> dict[str, dict]:
    """-Xptxas -v: per entry function, registers, barriers, smem, stack frame and spills."""
    out: dict[str, dict] = {}
    entry = props = None
    for line in text.splitlines():
        m = _PTX_ENTRY.search(line)
        if m:
            entry = m.group(1)
            out[entry] = {"registers": None, "barriers": 0, "smem": 0, "stack_frame": 0,
                          "spill_stores": 0, "spill_loads": 0}
            continue
        if "Compiling" in line and "function" in line:  # a non-entry function
            entry = None
            continue
        m = _PTX_PROPS.search(line)
        if m:
            props = m.group(1)
            continue
        m = _PTX_FRAME.search(line)
        if m and props in out:
            out[props].update(stack_frame=int(m.group(1)), spill_stores=int(m.group(2)),
                              spill_loads=int(m.group(3)))
            continue
        if "Used" in line and entry in out:
            regs = re.search(r"Used (\d+) registers", line)
            out[entry]["registers"] = int(regs.group(1)) if regs else None
            for key, pattern in (("barriers", r"used (\d+) barriers"), ("smem", r"(\d+) bytes smem")):
                found = re.search(pattern, line)
                if found:
                    out[entry][key] = int(found.group(1))
    return out


def demangle(names: list[str]) -> dict[str, str]:
    tool = shutil.which("cu++filt") or shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names) + "\n", capture_output=True, text=True)
    lines = out.stdout.splitlines()
    return dict(zip(names, lines)) if out.returncode == 0 and len(lines) == len(names) else {n: n for n in names}


def short_name(demangled: str) -> str:
    """'(anonymous namespace)::selective_scan_fwd_kernel<float>(SelectiveScanParams)' ->
    'selective_scan_fwd_kernel<float>'."""
    name = re.sub(r"^void\s+", "", demangled.replace("(anonymous namespace)::", ""))
    depth = 0
    for k, c in enumerate(name):  # cut the parameter list at the first '(' outside <...>
        depth += {"<": 1, ">": -1}.get(c, 0)
        if c == "(" and depth == 0 and k > 0:
            return name[:k]
    return name


def _same_code(a: list[Instr], b: list[Instr]) -> bool:
    return len(a) == len(b) and all(x.addr == y.addr and x.opcode == y.opcode and x.operands == y.operands
                                    and x.pred == y.pred for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------------

def loop_record(loop: Loop, source: str | None) -> dict:
    counts = count_classes(loop.instrs)
    lines = source_lines(loop, source) if source else None
    return {"header": loop.header, "start": f"0x{loop.start:04x}", "end": f"0x{loop.end:04x}",
            "instructions": len(loop.instrs), "depth": loop.depth, "innermost": loop.innermost,
            "contains": [f"0x{s:04x}" for s in loop.contains], "overlaps": [f"0x{s:04x}" for s in loop.overlaps],
            "source_lines": list(lines) if lines else None, "mufu_ex2": loop.mufu("EX2"), **counts}


def per_update(loop: Loop, updates: float | None) -> dict:
    counts = count_classes(loop.instrs)
    if not updates:
        return {"updates_per_iteration": None, "instructions_per_update": None, "classes_per_update": None,
                "ex2_per_update": None}
    return {"updates_per_iteration": updates,
            "instructions_per_update": round(len(loop.instrs) / updates, 3),
            "classes_per_update": {c: round(n / updates, 3) for c, n in counts["classes"].items()},
            "details_per_update": {c: {d: round(n / updates, 3) for d, n in ds.items()}
                                   for c, ds in counts["details"].items()},
            "ex2_per_update": round(loop.mufu("EX2") / updates, 3)}


def analyse_function(fn: Function, ptxas: dict, kernel: Kernel, limits: ArchLimits, lines_fn: Function | None,
                     demangled: str) -> dict:
    resources = dict(ptxas.get(fn.name) or {})
    block = kernel.block_size or fn.max_threads
    record = {"mangled": fn.name, "demangled": demangled, "name": short_name(demangled), **resources,
              "shared_section_bytes": fn.shared_section, "max_threads_launch_bounds": fn.max_threads,
              "block_size": block, "block_size_from": "--block-size" if kernel.block_size else
              ("__launch_bounds__" if fn.max_threads else None), "dynamic_smem": kernel.dynamic_smem,
              "instructions": len(fn.instrs)}
    if block and resources.get("registers") is not None:
        record["occupancy"] = occupancy(limits, block, resources["registers"], resources.get("smem", 0),
                                        kernel.dynamic_smem, resources.get("barriers", 0))
    else:
        record["occupancy"] = None
    # loops, with line info borrowed from the -lineinfo build when its SASS is the same
    have_lines = lines_fn is not None and _same_code(fn.instrs, lines_fn.instrs)
    if have_lines:
        for instr, twin in zip(fn.instrs, lines_fn.instrs):
            instr.locs = twin.locs
    record["line_info"] = have_lines
    source = str(kernel.source) if have_lines else None
    loops = find_loops(fn)
    record["loops"] = [loop_record(loop, source) for loop in loops]
    found: list[tuple[LoopSpec, list[Loop]]] = []
    for spec in kernel.loop_specs if have_lines else []:
        matched = loops_for_source_range(loops, str(kernel.source), spec.first, spec.last)
        if matched:
            found.append((spec, matched))
    if not found:
        origin = "heuristic: the innermost loop with the most MUFU.EX2"
        if kernel.loop_specs and not have_lines:
            origin += " (no line info: the -lineinfo build gave other SASS)"
        elif kernel.loop_specs:
            origin += f" (no SASS loop for source lines {kernel.loop_specs[0].first}-{kernel.loop_specs[0].last})"
        hottest = hottest_loops(loops)
        if hottest:
            found.append((LoopSpec(None, None, None, origin), hottest))
    record["inner_loops"] = []
    for spec, matched in found:
        loop = matched[0]
        updates = kernel.updates if kernel.updates is not None else spec.updates
        record["inner_loops"].append({
            "start": f"0x{loop.start:04x}", "header": loop.header, "selected_by": spec.origin,
            "marked_source_lines": [spec.first, spec.last] if spec.first else None,
            "instructions": len(loop.instrs), "mufu_ex2": loop.mufu("EX2"), **per_update(loop, updates),
            # not in the per-update figures: remainder loops or specialised copies from the same lines
            # (marker), or other innermost loops with as many MUFU.EX2 (heuristic)
            "also_matched": [{"start": f"0x{m.start:04x}", "instructions": len(m.instrs), "mufu_ex2": m.mufu("EX2")}
                             for m in matched[1:]]})
    return record


def analyse(kernel: Kernel, arch: int, build: dict) -> dict:
    functions = parse_sass(build["sass"])
    lines_by_name = {fn.name: fn for fn in parse_sass(build["sass_lineinfo"])}
    ptxas = parse_ptxas(build["ptxas"])
    names = demangle([fn.name for fn in functions])
    records = [analyse_function(fn, ptxas, kernel, ARCH_LIMITS[arch], lines_by_name.get(fn.name), names[fn.name])
               for fn in functions]
    command = [Path(build["command"][0]).name, *build["command"][1:]]
    command[-3:] = ["-o", "KERNEL.cubin", kernel.path]
    return {"nvcc_command": shlex.join(command), "functions": records}


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

TABLE_CLASSES = ("fp32", "mufu", "shared", "shuffle", "global", "local", "integer", "convert", "move",
                 "uniform", "sync", "branch", "other")


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if isinstance(x, float) else str(x)


def _details(details: dict, cls: str, scale: float = 1.0) -> str:
    items = details.get(cls, {})
    return ", ".join(f"{k} {_fmt(v / scale)}" for k, v in items.items())


def markdown(record: dict) -> str:
    out = [f"# Selective-scan kernels: cost from the SASS ({record['date']})", "",
           f"Command: `{record['command']}`", "",
           f"Machine: {record['machine'].get('host')}, {record['machine'].get('cpu_model')} (no GPU needed); "
           f"nvcc: {record['nvcc']['version']}; nvdisasm: {record['nvdisasm']['version']} "
           f"({record['nvdisasm']['path']}).", "",
           f"nvcc flags: `{' '.join(NVCC_FLAGS)} -gencode arch=compute_XY,code=sm_XY` + the kernel's own "
           "(a second compile adds `-lineinfo` for source lines; its SASS is checked to be identical).", ""]
    out += ["| kernel | source | extra nvcc flags | dynamic smem | inner loop named by |", "|---|---|---|---:|---|"]
    for k in record["kernels"]:
        src = f"{k['revision'][:12]}:{k['path']}" if k["revision"] else k["path"]
        named = "; ".join(k["loop_specs"]) or "heuristic"
        out.append(f"| {k['label']} | `{src}` (sha256 {k['sha256'][:12]}) | {' '.join(k['flags']) or '-'} | "
                   f"{k['dynamic_smem']} | {named} |")
    out += ["", "## Resources and occupancy", "",
            "Static counts from `-Xptxas -v`; occupancy as cuda_occupancy.h computes it (default carveout), "
            "from the per-SM limits at the end.", "",
            "| kernel | arch | function | regs | smem B | stack / spill st / ld B | block | blocks/SM "
            "| warps/SM | occupancy | limited by |", "|---|---|---|---:|---:|---|---:|---:|---:|---:|---|"]
    for k in record["kernels"]:
        for arch, a in k["archs"].items():
            for f in a["functions"]:
                occ = f["occupancy"] or {}
                smem = f"{f.get('smem', 0)}" + (f" + {f['dynamic_smem']}" if f["dynamic_smem"] else "")
                out.append(f"| {k['label']} | {arch} | `{f['name']}` | {f.get('registers')} | {smem} | "
                           f"{f.get('stack_frame', 0)} / {f.get('spill_stores', 0)} / {f.get('spill_loads', 0)} | "
                           f"{f['block_size'] or 'n/a'} | {occ.get('blocks_per_sm', 'n/a')} | "
                           f"{occ.get('warps_per_sm', 'n/a')} | "
                           f"{_fmt(occ.get('occupancy_pct'), 1) + ' %' if occ else 'n/a'} | "
                           f"{', '.join(occ.get('limited_by', [])) or 'n/a'} |")
    out += ["", "## Inner loop: SASS instructions per (c, t, n) update, by class", "",
            "instr/update = loop body / updates per iteration (one thread's updates per pass of the compiled "
            "loop) = warp instructions per 32 updates. EX2/upd: MUFU.EX2 per update (1 when every update "
            "takes one exp).", "",
            "| kernel | arch | function | loop (src lines) | body | upd/iter | instr/update | EX2/upd | "
            + " | ".join(TABLE_CLASSES) + " |", "|---|---|---|---|---:|---:|---:|---:|" + "---:|" * len(TABLE_CLASSES)]
    notes = []
    for k in record["kernels"]:
        for arch, a in k["archs"].items():
            for f in a["functions"]:
                for lp in f["inner_loops"]:
                    loop = next(x for x in f["loops"] if x["start"] == lp["start"])
                    lines = loop["source_lines"]
                    where = f"{lp['start']}" + (f" ({lines[0]}-{lines[1]})" if lines else "")
                    per = lp["classes_per_update"]
                    cells = [_fmt(per.get(c, 0.0) if per else None) for c in TABLE_CLASSES]
                    out.append(f"| {k['label']} | {arch} | `{f['name']}` | {where} | {lp['instructions']} | "
                               f"{_fmt(lp['updates_per_iteration'])} | {_fmt(lp['instructions_per_update'])} | "
                               f"{_fmt(lp['ex2_per_update'])} | " + " | ".join(cells) + " |")
                    if lp["selected_by"].startswith("heuristic"):
                        notes.append(f"{k['label']} {arch} `{f['name']}`: {lp['selected_by']}")
                    why = ("is another innermost loop with as many MUFU.EX2" if lp["selected_by"].startswith("heuristic")
                           else "comes from the same source lines too (a remainder or a specialised copy)")
                    for other in lp["also_matched"]:
                        notes.append(f"{k['label']} {arch} `{f['name']}`: loop {other['start']} "
                                     f"({other['instructions']} instructions, {other['mufu_ex2']} EX2) {why}; "
                                     "not in the table")
                if not f["inner_loops"]:
                    notes.append(f"{k['label']} {arch} `{f['name']}`: no inner loop found (no loop with MUFU.EX2)")
    if notes:
        out += [""] + [f"- {n}" for n in dict.fromkeys(notes)]
    out += ["", "Inner loops per update by opcode (the `<float>` instantiation, else the first function):", ""]
    for k in record["kernels"]:
        for arch, a in k["archs"].items():
            for f in [f for f in a["functions"] if "<float>" in f["name"]][:1] or a["functions"][:1]:
                for lp in f["inner_loops"]:
                    if not lp.get("details_per_update"):
                        continue
                    parts = [f"{c}: {_details(lp['details_per_update'], c)}" for c in CLASS_ORDER
                             if c in lp["details_per_update"]]
                    out.append(f"- {k['label']} {arch} `{f['name']}` loop {lp['start']}: " + "; ".join(parts))
    out += ["", "## All loops", "",
            "Static counts of each loop body (nested loops included in their parents). depth 0 = outermost.", "",
            "| kernel | arch | function | loop | src lines | depth | instr | EX2 | "
            + " | ".join(TABLE_CLASSES) + " |", "|---|---|---|---|---|---:|---:|---:|" + "---:|" * len(TABLE_CLASSES)]
    for k in record["kernels"]:
        for arch, a in k["archs"].items():
            for f in a["functions"]:
                for loop in f["loops"]:
                    lines = loop["source_lines"]
                    cells = [str(loop["classes"].get(c, 0)) for c in TABLE_CLASSES]
                    out.append(f"| {k['label']} | {arch} | `{f['name']}` | {loop['start']}-{loop['end']} | "
                               f"{f'{lines[0]}-{lines[1]}' if lines else '-'} | {loop['depth']} | "
                               f"{loop['instructions']} | {loop['mufu_ex2']} | " + " | ".join(cells) + " |")
    out += ["", "## Per-SM limits used", "",
            "CUDA C++ Programming Guide, Compute Capabilities, Tables 30-31; granularities, reservation and "
            "barrier rule: <cuda>/include/cuda_occupancy.h.", "",
            "| arch | max warps | max blocks | registers | reg. granularity / warp | smem / SM | smem / block (opt-in) "
            "| smem granularity | reserved / block |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for arch, lim in record["arch_limits"].items():
        name = ARCH_NAMES.get(int(arch.removeprefix("sm_")))
        out.append(f"| {arch}{f' ({name})' if name else ''} | {lim['max_warps']} | {lim['max_blocks']} | {lim['regs_per_sm']} | "
                   f"{lim['reg_granularity']} | {lim['smem_per_sm'] // KB} KB | {lim['smem_per_block_optin'] // KB} KB | "
                   f"{lim['smem_granularity']} B | {lim['reserved_smem_per_block']} B |")
    out += ["", "Classes: " + "; ".join(f"{c}: {', '.join(CLASS_OPCODES[c])}" for c in CLASS_ORDER
                                        if c in CLASS_OPCODES)
            + "; uniform: U* opcodes, R2UR, S2UR; other: the rest (S2R, LDC, NOP, PLOP3...). "
            "HADD2.F32 counts as convert, HFMA2.MMA with -RZ, RZ operands (a constant load) as move. "
            "Predicated instructions count once."]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _per_kernel(values: list[str], option: str, labels: list[str], convert) -> dict[str, object]:
    """[LABEL=]VALUE options -> {label: value}; a bare VALUE applies to every kernel."""
    out: dict[str, object] = {}
    for raw in values:
        label, eq, value = raw.rpartition("=")
        targets = [label] if eq else labels
        if eq and label not in labels:
            raise UsageError(f"{option} {raw!r}: no kernel labelled {label!r} (kernels: {', '.join(labels)})")
        try:
            converted = convert(value)
        except ValueError:
            raise UsageError(f"{option} {raw!r}: {value!r} is not a valid value") from None
        for t in targets:
            out[t] = converted
    return out


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def parse_archs(text: str) -> list[int]:
    archs = []
    for part in text.split(","):
        part = part.strip().lower().removeprefix("sm_").removeprefix("compute_")
        if not part:
            continue
        if not part.isdigit() or int(part) not in ARCH_LIMITS:
            raise UsageError(f"--arch: unknown architecture {part!r} (known: {', '.join(map(str, ARCH_LIMITS))})")
        archs.append(int(part))
    if not archs:
        raise UsageError("--arch: give at least one architecture, e.g. 87,89,90")
    return list(dict.fromkeys(archs))


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, like every other bad input
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="See the module docstring (benchmarks/scan_sass.py) for the marker syntax.")
    parser.add_argument("--kernel", action="append", required=True, metavar="LABEL=SOURCE[@-FLAG...]",
                        help="a kernel source file or REV:PATH, with extra nvcc flags after '@'; repeatable")
    parser.add_argument("--arch", default="87,89,90", help="comma-separated architectures (default 87,89,90)")
    parser.add_argument("--out", type=Path, help="write OUT.md and OUT.json")
    parser.add_argument("--dynamic-smem", action="append", default=[], metavar="[LABEL=]BYTES",
                        help="dynamic shared memory per block (default 0)")
    parser.add_argument("--block-size", action="append", default=[], metavar="[LABEL=]THREADS",
                        help="threads per block (default: the kernel's __launch_bounds__)")
    parser.add_argument("--updates", action="append", default=[], metavar="[LABEL=]N",
                        help="(c, t, n) updates per thread per pass of the inner loop (overrides the marker)")
    parser.add_argument("--loop-line", action="append", default=[], metavar="[LABEL=]LINE",
                        help="source line of the inner loop statement (instead of the marker)")
    parser.add_argument("--nvcc-arg", action="append", default=[], metavar="ARG",
                        help="an extra nvcc argument for every kernel (e.g. --nvcc-arg=-DNDEBUG)")
    parser.add_argument("--nvdisasm", help="the nvdisasm to use (default: $NVDISASM, PATH, the toolkit, the pip wheel)")
    return parser


def _script_name() -> str:
    here = Path(__file__).resolve()
    try:
        return str(here.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(here)


def run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    archs = parse_archs(args.arch)
    kernels = []
    for spec in args.kernel:
        label, source, flags = parse_kernel_spec(spec)
        if any(k.label == label for k in kernels):
            raise UsageError(f"--kernel: label {label!r} given twice")
        kernels.append(Kernel(label, spec, source, flags))
    labels = [k.label for k in kernels]
    for option, values, attr, convert in (("--dynamic-smem", args.dynamic_smem, "dynamic_smem", _nonneg_int),
                                          ("--block-size", args.block_size, "block_size", _positive_int),
                                          ("--updates", args.updates, "updates", _positive_float),
                                          ("--loop-line", args.loop_line, "loop_line", _positive_int)):
        for label, value in _per_kernel(values, option, labels, convert).items():
            setattr(next(k for k in kernels if k.label == label), attr, value)
    if args.out:
        try:
            for suffix in (".md", ".json"):
                check_output_file(args.out.with_name(args.out.name + suffix), "--out")
        except CvglError as exc:
            raise UsageError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="cvgl-scan-sass-") as tmp:
        work = Path(tmp)
        for kernel in kernels:
            load_kernel(kernel, work)
            try:
                kernel.loop_specs = read_markers(kernel.text)
                if kernel.loop_line:
                    first, last = loop_extent(kernel.text, kernel.loop_line)
            except UsageError as exc:
                raise UsageError(f"kernel {kernel.label} ({kernel.path}): {exc}") from None
            if kernel.loop_line:
                marked = next((s.updates for s in kernel.loop_specs if s.first == first), None)
                kernel.loop_specs = [LoopSpec(first, last, marked, f"--loop-line {kernel.loop_line}")]
        nvcc = find_nvcc()
        if nvcc is None:
            raise UsageError("nvcc not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin, /usr/local/bin)")
        nvdisasm = find_nvdisasm(nvcc, args.nvdisasm)
        if nvdisasm is None:
            raise UsageError("nvdisasm not found: pip install nvidia-cuda-nvdisasm, or give --nvdisasm / $NVDISASM")
        supported = nvcc_architectures(nvcc)
        missing = [a for a in archs if supported and a not in supported]
        if missing:
            raise UsageError(f"--arch: this nvcc does not compile for {', '.join(f'sm_{a}' for a in missing)}")
        jobs = {}
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for kernel in kernels:
                for arch in archs:
                    folder = work / "build" / f"{kernel.label}.{arch}"
                    folder.mkdir(parents=True)
                    jobs[kernel.label, arch] = pool.submit(compile_and_disassemble, nvcc, nvdisasm, kernel, arch,
                                                           args.nvcc_arg, folder)
        builds = {key: job.result() for key, job in jobs.items()}
        record = {
            "command": shlex.join(["python", _script_name(), *(sys.argv[1:] if argv is None else argv)]),
            "date": dt.date.today().isoformat(),
            "machine": machine_info(with_torch=False),
            "nvcc": {"path": str(nvcc), "version": tool_version(nvcc)},
            "nvdisasm": {"path": str(nvdisasm), "version": tool_version(nvdisasm)},
            "nvcc_flags": [*NVCC_FLAGS, *args.nvcc_arg],
            "arch_limits": {f"sm_{a}": vars(ARCH_LIMITS[a]) for a in archs},
            "classes": {**{c: list(CLASS_OPCODES[c]) for c in CLASS_ORDER if c in CLASS_OPCODES},
                        "uniform": ["U*", "R2UR", "S2UR"], "other": ["anything else"]},
            "kernels": [],
        }
        for kernel in kernels:
            record["kernels"].append({
                "label": kernel.label, "spec": kernel.spec, "path": kernel.path, "revision": kernel.revision,
                "sha256": hashlib.sha256(kernel.text.encode()).hexdigest(), "flags": kernel.flags,
                "dynamic_smem": kernel.dynamic_smem, "block_size": kernel.block_size, "updates": kernel.updates,
                "loop_specs": [f"{s.origin}: lines {s.first}-{s.last}, updates-per-iteration "
                               f"{_fmt(kernel.updates if kernel.updates is not None else s.updates)}"
                               for s in kernel.loop_specs],
                "archs": {f"sm_{arch}": analyse(kernel, arch, builds[kernel.label, arch]) for arch in archs},
            })
    text = markdown(record)
    print(text, end="")
    if args.out:
        atomic_write(args.out.with_name(args.out.name + ".md"), lambda tmp: tmp.write_text(text))
        atomic_write_json(record, args.out.with_name(args.out.name + ".json"))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CvglError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
