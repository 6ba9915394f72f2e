"""Probe: timing events *inside* one captured CUDA graph (torch.cuda.Event(external=True)).

For each model/batch/dtype: unhooked graph replay vs the same forward captured with an event
pair around every module call (all events, and deduplicated: a boundary with no op since the
previous event reuses it), the executed-leaf sum, and the parents' own time.
"""

import statistics
import time

import torch
import torchvision
from torch.utils._python_dispatch import TorchDispatchMode

torch.backends.cudnn.benchmark = False
dev = "cuda"


class Dirty(TorchDispatchMode):
    dirty = True

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        Dirty.dirty = True
        return func(*args, **(kwargs or {}))


def graph_of(fn, stream):
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=stream):
        fn()
    return g


def replay_times(g, n=30):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(5):
        g.replay()
    out = []
    for _ in range(n):
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


def run(name, batch, dtype, dedupe):
    m = getattr(torchvision.models, name)().to(dev, dtype).eval()
    x = torch.randn(batch, 3, 224, 224, device=dev, dtype=dtype)
    s = torch.cuda.Stream()
    with torch.no_grad():
        g0 = graph_of(lambda: m(x), s)
        plain = replay_times(g0)
        del g0
        mods = list(m.modules())
        calls = []  # (module idx, parent call, start ev, end ev, has_children)
        stack = []
        events = []
        state = {"capturing": False}

        def ev():
            if dedupe and state["capturing"] and not Dirty.dirty and events:
                return events[-1]
            e = torch.cuda.Event(enable_timing=True, external=True)
            e.record()
            events.append(e)
            Dirty.dirty = False
            return e

        def pre(i):
            def h(mod, args):
                if not state["capturing"]:
                    return
                calls.append([i, stack[-1] if stack else -1, None, None, False])
                if stack:
                    calls[stack[-1]][4] = True
                stack.append(len(calls) - 1)
                calls[-1][2] = ev()

            return h

        def post(i):
            def h(mod, args, out):
                if not state["capturing"]:
                    return
                c = stack.pop()
                calls[c][3] = ev()

            return h

        hs = []
        for i, mod in enumerate(mods):
            hs.append(mod.register_forward_pre_hook(pre(i)))
            hs.append(mod.register_forward_hook(post(i)))

        def fn():
            if state["capturing"] and dedupe:
                with Dirty():
                    return m(x)
            return m(x)

        # warm-up outside, capture with hooks live
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                m(x)
        torch.cuda.current_stream().wait_stream(s)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        state["capturing"] = True
        try:
            with torch.cuda.graph(g, stream=s):
                fn()
        except Exception as e:
            print(name, "capture failed", type(e).__name__, str(e)[:300])
            return
        finally:
            state["capturing"] = False
        for h in hs:
            h.remove()
        hooked = replay_times(g)
        leaf, parent_self, root = [], [], []
        for _ in range(20):
            g.replay()
            torch.cuda.synchronize()
            try:
                d = [c[2].elapsed_time(c[3]) for c in calls]
            except Exception as e:
                print(name, "elapsed failed", type(e).__name__, str(e)[:300])
                return
            own = list(d)
            for k, c in enumerate(calls):
                if c[1] >= 0:
                    own[c[1]] -= d[k]
            leaf.append(sum(d[k] for k, c in enumerate(calls) if not c[4]))
            parent_self.append(sum(own[k] for k, c in enumerate(calls) if c[4]))
            root.append(d[0])
        L, P, R = (statistics.median(v) for v in (leaf, parent_self, root))
        print(
            f"{name:16s} b{batch:<3d} {str(dtype)[6:]:9s} dedupe={dedupe!s:5s} "
            f"events={len(set(map(id, events))):4d} calls={len(calls):4d} "
            f"plain {plain:.3f} ms  hooked {hooked:.3f} ms "
            f"({100 * (hooked / plain - 1):+.1f}%)  root {R:.3f}  "
            f"leaves {L:.3f} ({100 * (L / hooked - 1):+.1f}%)  parents' own {P:.3f}",
            flush=True,
        )


t0 = time.time()
print(torch.__version__, torch.cuda.get_device_name())
for name in ["resnet50", "vit_b_16", "convnext_tiny", "efficientnet_b0"]:
    for dtype in [torch.float32, torch.bfloat16]:
        for batch in [32, 1]:
            for dedupe in [False, True]:
                run(name, batch, dtype, dedupe)
print("total", time.time() - t0)
