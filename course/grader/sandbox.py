"""Confining the process that runs a student's code (Linux; elsewhere nothing is confined).

A student's worker is started as ``python -m course.grader.sandbox JOB`` (or forked by the fork
server, which has imported TensorFlow already): TensorFlow is imported first (our code,
unconfined), then ``run_job`` confines the process and everything it could start, and only then
runs ``course.grader.worker``, which loads the student's file. The reference worker is never
confined: it runs no student code.

What the confinement takes away, each with the kernel feature that enforces it:

- writing anywhere but the worker's own folder (Landlock): a submission cannot overwrite the
  grader, other students' files or the class's results, nor fill the disk beyond
  ``max_file_bytes`` per file (``RLIMIT_FSIZE``);
- reading the ``hidden`` folders (Landlock): the course's repository (its ``solutions/`` and
  their git history), other students' submissions, the class's output, other workers' folders.
  ``keep`` folders inside them stay readable (the installed ``course`` package, the interpreter);
- TCP connections and signals to processes outside the sandbox (Landlock, kernel ABI 4 and 6): no
  network, no killing the grader;
- starting processes (seccomp): ``fork``, ``vfork``, ``clone`` without ``CLONE_THREAD`` and
  ``execve`` fail with EPERM, so a fork bomb or a child that escapes the process group cannot
  happen; threads still work. Not where a GPU may be used: XLA runs NVIDIA's ``ptxas`` as a
  child process there (the runner then sets ``block_processes=False``).

Everything the kernel does not support is skipped and reported by :func:`apply`, so grading works
everywhere; the runner's time and memory limits do not depend on any of this.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# ------------------------------------------------------------------------------- Landlock ABI
_SYS_LANDLOCK = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_WRITE_TREE = sum(1 << b for b in range(4, 13))  # remove/make dir, file, char, sock, fifo, block, sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14          # ABI 2, ABI 3
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1    # ABI 4
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_RULE_PATH_BENEATH = 1
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE

# ------------------------------------------------------------------------------- seccomp
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# (fork, vfork, clone, clone3, execve, execveat); aarch64 has no fork/vfork system calls
_SYS_PROCESS = {"x86_64": (57, 58, 56, 435, 59, 322), "aarch64": (None, None, 220, 435, 221, 281)}
_CLONE_THREAD = 0x00010000
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_EPERM, _ENOSYS = 1, 38

# Devices a worker may write: the null/random devices, and the GPU's (CUDA opens them read-write).
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


@dataclass(frozen=True)
class Confinement:
    workdir: str                      # read-write; the only place a student may write
    hidden: tuple[str, ...] = ()      # not readable (except the ``keep`` folders inside them)
    keep: tuple[str, ...] = ()        # readable even inside a hidden folder
    max_file_bytes: int = 1 << 30
    block_processes: bool = True

    def to_json(self) -> dict:
        return {"workdir": self.workdir, "hidden": list(self.hidden), "keep": list(self.keep),
                "max_file_bytes": self.max_file_bytes, "block_processes": self.block_processes}

    @classmethod
    def from_json(cls, data: dict) -> "Confinement":
        return cls(data["workdir"], tuple(data.get("hidden", ())), tuple(data.get("keep", ())),
                   int(data.get("max_file_bytes", 1 << 30)), bool(data.get("block_processes", True)))


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, or 0 when there is none (or this is not Linux)."""
    numbers = _SYS_LANDLOCK.get(platform.machine())
    if sys.platform != "linux" or numbers is None:
        return 0
    version = _libc().syscall(numbers[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def describe() -> str:
    """One line on what confinement this machine supports (for reports and the doctor)."""
    abi = landlock_abi()
    parts = [f"Landlock ABI {abi}" if abi else "no Landlock (files and network not confined)"]
    parts.append("seccomp" if platform.machine() in _AUDIT_ARCH and sys.platform == "linux"
                 else "no seccomp (process creation not blocked)")
    return ", ".join(parts)


# ------------------------------------------------------------------------------- reading rules

def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def readable_roots(hidden, keep) -> list[str]:
    """The smallest set of paths whose subtrees cover everything but the hidden folders.

    Landlock only grants, so "all but X" is spelled out: every sibling of each folder on the way
    down to X is allowed whole, X is not, and the ``keep`` paths inside X are allowed again.
    Symbolic links are followed to their targets (that is what Landlock checks), and a link into
    a hidden folder is not followed.
    """
    hidden = sorted({os.path.realpath(h) for h in hidden})
    keep = sorted({os.path.realpath(k) for k in keep})
    out: list[str] = []
    seen: set[str] = set()

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.add(path)
        if any(_inside(path, h) for h in hidden):
            out.extend(k for k in keep if _inside(k, path) and os.path.exists(k))
            return
        if not any(_inside(h, path) for h in hidden) or not os.path.isdir(path):
            out.append(path)
            return
        try:
            entries = sorted(os.listdir(path))
        except OSError:
            return
        for name in entries:
            visit(os.path.realpath(os.path.join(path, name)))

    visit("/")
    return out


# ------------------------------------------------------------------------------- applying

def _landlock(conf: Confinement, abi: int) -> str:
    create, add_rule, restrict = _SYS_LANDLOCK[platform.machine()]
    libc = _libc()
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    write = _FS_WRITE_FILE | _FS_WRITE_TREE | (_FS_REFER if abi >= 2 else 0) | (
        _FS_TRUNCATE if abi >= 3 else 0)
    handled_net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0
    scoped = (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", read | write, handled_net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", read | write, handled_net)
    else:
        attr = struct.pack("=Q", read | write)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(create, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")

    def allow(path: str, rights: int, required: bool = False) -> None:
        # A path that vanished or cannot carry a rule is simply not granted (less access, never
        # more); only the worker's own folder must succeed.
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            if required:
                raise
            return
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rule = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
            if libc.syscall(add_rule, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                            rule, ctypes.c_uint32(0)) < 0 and required:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(fd)

    try:
        keep = list(conf.keep) + [conf.workdir]
        for path in readable_roots(conf.hidden, keep):
            allow(path, read)
        allow(conf.workdir, read | write, required=True)
        devices = list(_WRITABLE_DEVICES) + [f"/dev/{n}" for n in _listdir("/dev")
                                             if n.startswith(("nvidia", "dri"))]
        for device in devices:
            allow(device, _FS_READ_FILE | _FS_WRITE_FILE | (_FS_TRUNCATE if abi >= 3 else 0))
        if libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return f"Landlock ABI {abi}"


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _seccomp_program(machine: str) -> bytes:
    """A BPF filter: EPERM for fork, vfork, execve and clone without CLONE_THREAD; ENOSYS for
    clone3 (its flags are behind a pointer a filter cannot read; glibc then falls back to clone)."""
    fork, vfork, clone, clone3, execve, execveat = _SYS_PROCESS[machine]
    ld_w_abs, jeq_k, jset_k, ret_k = 0x20, 0x15, 0x45, 0x06

    def ins(code, jt, jf, k):
        return struct.pack("=HBBI", code, jt, jf, k)

    deny = [n for n in (fork, vfork, execve, execveat) if n is not None]
    prog = [ins(ld_w_abs, 0, 0, 4),                              # arch
            ins(jeq_k, 1, 0, _AUDIT_ARCH[machine]),
            ins(ret_k, 0, 0, _RET_ERRNO | _EPERM),               # a foreign ABI: refuse
            ins(ld_w_abs, 0, 0, 0)]                              # syscall number
    if machine == "x86_64":  # the x32 ABI has its own numbers: refuse all of them
        prog += [ins(0x35, 0, 1, 0x40000000), ins(ret_k, 0, 0, _RET_ERRNO | _EPERM)]  # jge
    for number in deny:
        prog += [ins(jeq_k, 0, 1, number), ins(ret_k, 0, 0, _RET_ERRNO | _EPERM)]
    prog += [ins(jeq_k, 0, 1, clone3), ins(ret_k, 0, 0, _RET_ERRNO | _ENOSYS),
             ins(jeq_k, 1, 0, clone), ins(ret_k, 0, 0, _RET_ALLOW),
             ins(ld_w_abs, 0, 0, 16),                            # clone's flags (low 32 bits)
             ins(jset_k, 1, 0, _CLONE_THREAD),
             ins(ret_k, 0, 0, _RET_ERRNO | _EPERM),
             ins(ret_k, 0, 0, _RET_ALLOW)]
    return b"".join(prog)


def _seccomp() -> str:
    machine = platform.machine()
    program = _seccomp_program(machine)
    count = len(program) // 8
    filters = ctypes.create_string_buffer(program, len(program))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = SockFprog(count, ctypes.cast(filters, ctypes.c_void_p))
    if _libc().prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "installing the seccomp filter failed")
    return "seccomp (no new processes)"


def apply(conf: Confinement) -> list[str]:
    """Confine this process (and any it could start); return what was applied."""
    applied = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a segfault leaves no core file behind
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (conf.max_file_bytes, conf.max_file_bytes))
        applied.append(f"files up to {conf.max_file_bytes >> 20} MiB")
    except (ValueError, OSError):
        pass
    if sys.platform != "linux":
        return applied
    # Required for unprivileged Landlock and seccomp; also stops set-uid programs gaining rights.
    _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    abi = landlock_abi()
    if abi:
        applied.append(_landlock(conf, abi))
    if conf.block_processes and platform.machine() in _AUDIT_ARCH:
        applied.append(_seccomp())
    return applied


def run_job(job_path: str) -> int:
    """Confine this process as the job says (TensorFlow already imported), then run the worker."""
    from course.grader import worker

    job = json.loads(Path(job_path).read_text())
    if job.get("confine"):
        conf = Confinement.from_json(job["confine"])
        # the interpreter and its libraries stay readable wherever they are installed
        interpreter = {sys.prefix, sys.base_prefix, sys.exec_prefix}
        conf = Confinement(conf.workdir, conf.hidden, conf.keep + tuple(sorted(interpreter)),
                           conf.max_file_bytes, conf.block_processes)
        try:
            apply(conf)
        except OSError as exc:  # never grade a student unconfined when confinement was asked for
            worker.Channel(int(job["result_fd"])).send(
                event="fatal", message=f"could not confine the student's process: {exc}")
            return 3
    return worker.main([job_path])


def main(argv: list[str]) -> int:
    """Import TensorFlow and Keras's backend (our code, unconfined, the bulk of the start-up),
    then ``run_job``."""
    from course.grader import worker

    if worker.imports_tensorflow():  # as the fork server does
        import tensorflow  # noqa: F401
    import keras  # noqa: F401

    return run_job(argv[0])


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # as the worker does: skip TensorFlow's slow interpreter teardown
