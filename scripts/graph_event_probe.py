"""Can timing CUDA events be recorded inside a captured CUDA graph? (feasibility probe)"""
import time
import torch, torchvision

m = torchvision.models.resnet50().cuda().eval()
x = torch.randn(32, 3, 224, 224, device="cuda")
leaves = [mod for mod in m.modules() if not list(mod.children())]
events = {}
def pre(mod, args):
    events.setdefault(id(mod), [torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)])[0].record()
def post(mod, args, out):
    events[id(mod)][1].record()
hs = [l.register_forward_pre_hook(pre) for l in leaves] + [l.register_forward_hook(post) for l in leaves]
s = torch.cuda.Stream()
with torch.no_grad():
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3): m(x)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            y = m(x)
        print("capture ok")
    except Exception as e:
        print("capture failed:", type(e).__name__, str(e)[:300]); raise SystemExit
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for i in range(5):
        start.record(); g.replay(); end.record(); torch.cuda.synchronize()
        try:
            t = [events[id(l)][0].elapsed_time(events[id(l)][1]) for l in leaves]
            print(f"replay {i}: e2e {start.elapsed_time(end):.3f} ms, leaf sum {sum(t):.3f} ms, conv1 {t[0]:.4f}")
        except Exception as e:
            print("elapsed failed:", type(e).__name__, str(e)[:300]); break
for h in hs: h.remove()
with torch.no_grad():
    g2 = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g2):
        y = m(x)
    ts = []
    for i in range(20):
        start.record(); g2.replay(); end.record(); torch.cuda.synchronize(); ts.append(start.elapsed_time(end))
    ts.sort(); print("unhooked graph e2e median", ts[10])
    ts = []
    for i in range(20):
        start.record(); m(x); end.record(); torch.cuda.synchronize(); ts.append(start.elapsed_time(end))
    ts.sort(); print("unhooked eager e2e median", ts[10])
