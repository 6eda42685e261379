#!/usr/bin/env python3
"""Split a `perf script` dump of a sandboxed GET or of a cold `bpr plan` into classes.

The tables of BENCHMARKS.md ("Where a sandboxed GET's CPU goes: the profile" and "Cold plan,
profiled") were made with this. Record with DWARF call graphs (the release binary's symbol
table and .eh_frame are enough; JIT frames are the guest), then dump and split:

    BPR_BENCH_REPORTS=0 RUST_BACKTRACE=0 chrt -f 20 perf record -F 1999 -g \
        --call-graph dwarf,32768 -o get.data target/release/deps/runtime-<hash> \
        --bench 'get_current_thread/sandboxed$' --profile-time 8
    perf script -i get.data -F comm,tid,ip,sym,dso > get.script
    scripts/perf-split.py get get.script

    RUST_BACKTRACE=0 BPR_BENCH_SKIP=memory,storage,explain,recorded BPR_BENCH_COLD_RUNS=2 \
        BPR_BENCH_WARM_RUNS=1 chrt -f 20 perf record -F 499 -g --call-graph dwarf,16384 \
        -o plan.data target/release/deps/plan-<hash>
    perf script -i plan.data -F comm,tid,ip,sym,dso > plan.script
    scripts/perf-split.py plan plan.script

Each sample counts once, in the first class (top to bottom) that one of its frames matches.
"""

import collections
import sys

# Frames of the bench binary's set-up, not of the measured loop.
GET_SETUP = (
    "runtime::catalog", "runtime::stream", "serde_json::de", "cranelift", "regalloc2",
    "big_catalogue", "_dl_", "start_host", "Component::from", "ArtifactCache",
    "Engine::new", "rayon", "wasmparser", "ld-linux",
)

GET_CLASSES = [
    ("test server task (native pays it too)", ["start_server"]),
    ("fresh store + instantiate", [
        "instantiate_async", "Store<T>::new", "WasiCtxBuilder", "HostState::new",
        "CallShared::new",
    ]),
    ("store drop (pool slot reset, WasiCtx/HostState drop)", [
        "drop_in_place<wasmtime::runtime::store::StoreInner", "StoreOpaque as core::ops::drop",
        "drop_in_place<blueprint_remote_providers::runtime::state::HostState",
        "drop_in_place<wasmtime_wasi::ctx::WasiCtx", "free_many", "DecommitQueue",
        "merge_or_flush",
    ]),
    ("handle: hyper client send (native pays it too)", [
        "Client<C,B>::send_request", "hyper_util::client::legacy",
    ]),
    ("handle: build (checks, URI, header map)", ["http_handle::build"]),
    ("handle: exchange rest (caps, policy, audit, timeouts)", ["OutboundContext::exchange"]),
    ("handle: rest (table push, ready map, options)", ["outgoing_handler::add_to_linker_instance"]),
    ("response body to the guest (streams, poll_frame, charges)", [
        "HostIncomingBodyStream", "ResponseBody", "streams::", "InputStream",
        "poll::add_to_linker",
    ]),
    ("wasi:http types (fields, request, response)", [
        "wasmtime_wasi_http::p2::types_impl", "HttpView", "FieldMap", "wasmtime_wasi_http",
    ]),
    ("host-call entry/exit (lift/lower, trap catch, fiber)", [
        "HostFn::entrypoint", "catch_unwind_and_record_trap", "cabi_entrypoint",
    ]),
    ("call scope, telemetry, result checks", [
        "CallScope", "ReturnLimits", "Meter", "telemetry", "ProviderHandle::list_instances",
        "call_list_instances",
    ]),
    ("hyper client connection task (native pays it too)", [
        "hyper::client::conn", "hyper::proto::h1::dispatch",
    ]),
]

PLAN_CLASSES = [
    ("component compile (Cranelift)", ["cranelift", "regalloc2", "wasmparser"]),
    ("page faults (kernel zeroing fresh pages)", ["exc_page_fault"]),
    ("canonical ABI lift of the returned offers", ["Lift", "lift"]),
    ("response body to the guest (streams, reads, kernel receive)", [
        "HostIncomingBodyStream", "ResponseBody", "streams::", "InputStream", "recv", "tcp_",
        "sock_",
    ]),
    ("normalise + encode", ["normalise", "normalize", "encode"]),
    ("store write (SQLite)", ["sqlite", "rusqlite"]),
    ("instantiate / store drop", ["instantiate", "pagemap", "drop_in_place<wasmtime::runtime::store"]),
]


def read_samples(path):
    """(comm, frames leaf first) of every sample in a `perf script` dump."""
    samples, frames, comm = [], None, None
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if frames is not None:
                    samples.append((comm, frames))
                frames = None
            elif not line.startswith("\t"):
                comm, frames = line.split()[0], []
            else:
                parts = line.strip().split(" ", 1)
                frames.append(parts[1] if len(parts) > 1 else "")
    if frames:
        samples.append((comm, frames))
    return samples


def is_jit(frames):
    return "[JIT]" in frames[0] or "/tmp/perf-" in frames[0]


def classify(frames, classes):
    if is_jit(frames):
        return "guest code (JIT)"
    for name, marks in classes:
        if any(m in f for f in frames for m in marks):
            return name
    return "other (runtime, epoll, kernel, unattributed)"


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("get", "plan"):
        sys.exit("usage: perf-split.py get|plan <perf script dump>")
    mode, samples = sys.argv[1], read_samples(sys.argv[2])
    if mode == "get":
        kept = [s for _, s in samples if s and not any(m in f for f in s for m in GET_SETUP)]
        classes = GET_CLASSES
    else:
        # Only the `bpr` processes the bench starts, not the bench itself.
        kept = [s for c, s in samples if s and not c.startswith("plan")]
        classes = PLAN_CLASSES
    counts = collections.Counter(classify(s, classes) for s in kept)
    print(f"{len(kept)} samples kept of {len(samples)}")
    for name, n in counts.most_common():
        print(f"{100 * n / len(kept):6.2f} %  {n:6d}  {name}")


if __name__ == "__main__":
    main()
