"""The DeepAR network as pure numpy functions on explicit arrays: a stack of LSTM layers with zoneout
and a linear head that outputs the likelihood's raw parameters.

Shapes: ``T`` time steps, ``B`` series in the batch, ``F`` input features, ``H = num_cells``,
``k`` raw likelihood parameters. Parameters live in a flat dict of float64 arrays:

* ``Wx{l}`` (F_l, 4H), ``Wh{l}`` (H, 4H), ``b{l}`` (4H,) for layer ``l`` (``F_0 = F``, ``F_l = H`` above;
  gate order i, f, o, g: the three sigmoid gates, then the tanh candidate);
* ``Wp`` (H, k), ``bp`` (k,) for the head.

:func:`forward` unrolls a whole window with teacher forcing (inputs known in advance) and keeps what
:func:`backward` needs for backpropagation through time; :func:`step` advances one step for sampling.
Zoneout (SageMaker's ``dropout_rate``) keeps each unit's previous hidden and cell value with that
probability during training; at inference the cell runs without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

Params = dict[str, np.ndarray]
State = list[tuple[np.ndarray, np.ndarray]]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread: the matrices here are small (batch x 4 * num_cells), and a multi-threaded
    BLAS spends more time synchronising than computing (10x slower on a loaded 2-core machine).
    Uses ``threadpoolctl`` when installed, else does nothing (set ``OPENBLAS_NUM_THREADS=1`` instead)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def num_layers_of(params: Params) -> int:
    return sum(1 for key in params if key.startswith("Wx"))


def init_params(n_inputs: int, num_cells: int, num_layers: int, n_outputs: int, rng: np.random.Generator) -> Params:
    """Glorot-uniform weights, zero biases except forget gates (1.0), a small head."""
    params: Params = {}
    h = num_cells
    for layer in range(num_layers):
        f_in = n_inputs if layer == 0 else h
        lim_x = np.sqrt(6.0 / (f_in + 4 * h))
        lim_h = np.sqrt(6.0 / (h + 4 * h))
        params[f"Wx{layer}"] = rng.uniform(-lim_x, lim_x, (f_in, 4 * h))
        params[f"Wh{layer}"] = rng.uniform(-lim_h, lim_h, (h, 4 * h))
        bias = np.zeros(4 * h)
        bias[h : 2 * h] = 1.0  # forget gate
        params[f"b{layer}"] = bias
    lim_p = np.sqrt(6.0 / (h + n_outputs))
    params["Wp"] = rng.uniform(-lim_p, lim_p, (h, n_outputs)) * 0.1
    params["bp"] = np.zeros(n_outputs)
    return params


def zero_state(params: Params, batch: int) -> State:
    h = params["Wh0"].shape[0]
    dt = params["Wh0"].dtype
    return [(np.zeros((batch, h), dt), np.zeros((batch, h), dt)) for _ in range(num_layers_of(params))]


def zoneout_masks(
    params: Params, steps: int, batch: int, rate: float, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Per layer, boolean (T, B, H) masks for (h, c); True keeps the previous value. None if rate is 0."""
    if rate <= 0.0:
        return None
    h = params["Wh0"].shape[0]
    return [
        (rng.random((steps, batch, h)) < rate, rng.random((steps, batch, h)) < rate)
        for _ in range(num_layers_of(params))
    ]


def forward(
    params: Params, X: np.ndarray, zoneout: list[tuple[np.ndarray, np.ndarray]] | None = None
) -> tuple[np.ndarray, dict]:
    """Unroll over ``X`` (T, B, F) from a zero state -> (raw (T, B, k), cache for :func:`backward`)."""
    T, B, _ = X.shape
    layers = []
    inp = X
    for layer in range(num_layers_of(params)):
        Wx, Wh, b = params[f"Wx{layer}"], params[f"Wh{layer}"], params[f"b{layer}"]
        H = Wh.shape[0]
        XW = (inp.reshape(T * B, -1) @ Wx).reshape(T, B, 4 * H) + b
        dt = Wh.dtype
        gates = np.empty((T, B, 4 * H), dt)
        cs = np.empty((T + 1, B, H), dt)  # cs[t + 1] = cell state after step t; cs[0] = 0
        hs = np.empty((T + 1, B, H), dt)
        tcs = np.empty((T, B, H), dt)
        cs[0] = 0.0
        hs[0] = 0.0
        mh, mc = zoneout[layer] if zoneout is not None else (None, None)
        for t in range(T):
            a = XW[t] + hs[t] @ Wh
            g = gates[t]
            g[:, : 3 * H] = _sigmoid(a[:, : 3 * H])
            g[:, 3 * H :] = np.tanh(a[:, 3 * H :])
            c_new = g[:, H : 2 * H] * cs[t] + g[:, :H] * g[:, 3 * H :]
            tc = np.tanh(c_new)
            tcs[t] = tc
            h_new = g[:, 2 * H : 3 * H] * tc
            if mh is None or mc is None:
                cs[t + 1] = c_new
                hs[t + 1] = h_new
            else:
                cs[t + 1] = np.where(mc[t], cs[t], c_new)
                hs[t + 1] = np.where(mh[t], hs[t], h_new)
        layers.append({"inp": inp, "gates": gates, "cs": cs, "hs": hs, "tcs": tcs, "mh": mh, "mc": mc})
        inp = hs[1:]
    raw = inp @ params["Wp"] + params["bp"]
    return raw, {"layers": layers, "top": inp}


def backward(params: Params, cache: dict, d_raw: np.ndarray) -> Params:
    """Gradient of ``sum(d_raw * raw)`` with respect to every parameter (same keys and shapes)."""
    grads: Params = {}
    top = cache["top"]
    T, B, H = top.shape
    grads["Wp"] = top.reshape(T * B, H).T @ d_raw.reshape(T * B, -1)
    grads["bp"] = d_raw.sum(axis=(0, 1))
    d_out = d_raw @ params["Wp"].T  # (T, B, H) gradient into the top layer's outputs
    for layer in reversed(range(len(cache["layers"]))):
        lc = cache["layers"][layer]
        Wx, Wh = params[f"Wx{layer}"], params[f"Wh{layer}"]
        gates, cs, hs, tcs, mh, mc = lc["gates"], lc["cs"], lc["hs"], lc["tcs"], lc["mh"], lc["mc"]
        dt = Wh.dtype
        dA = np.empty((T, B, 4 * H), dt)
        dh_next = np.zeros((B, H), dt)
        dc_next = np.zeros((B, H), dt)
        WhT = Wh.T
        for t in reversed(range(T)):
            dh = d_out[t] + dh_next
            dc = dc_next
            if mh is not None:
                keep_h, keep_c = mh[t], mc[t]
                dh_keep = np.where(keep_h, dh, 0.0)
                dc_keep = np.where(keep_c, dc, 0.0)
                dh = dh - dh_keep
                dc = dc - dc_keep
            g = gates[t]
            i, f, o, gg = g[:, :H], g[:, H : 2 * H], g[:, 2 * H : 3 * H], g[:, 3 * H :]
            tc = tcs[t]
            dc = dc + dh * o * (1.0 - tc * tc)
            da = dA[t]
            da[:, :H] = dc * gg
            da[:, H : 2 * H] = dc * cs[t]
            da[:, 2 * H : 3 * H] = dh * tc
            sg = g[:, : 3 * H]
            da[:, : 3 * H] *= sg * (1.0 - sg)
            da[:, 3 * H :] = dc * i * (1.0 - gg * gg)
            dh_next = da @ WhT
            dc_next = dc * f
            if mh is not None:
                dh_next += dh_keep
                dc_next += dc_keep
        inp = lc["inp"]
        flat = dA.reshape(T * B, 4 * H)
        grads[f"Wx{layer}"] = inp.reshape(T * B, -1).T @ flat
        grads[f"Wh{layer}"] = hs[:-1].reshape(T * B, H).T @ flat
        grads[f"b{layer}"] = flat.sum(axis=0)
        d_out = dA @ Wx.T  # gradient into this layer's inputs
    return grads


def step(params: Params, x: np.ndarray, state: State) -> tuple[np.ndarray, State]:
    """One inference step (no zoneout): ``x`` (B, F), state per layer (h, c) each (B, H) -> (raw (B, k), state)."""
    new_state: State = []
    inp = x
    for layer, (h, c) in enumerate(state):
        H = h.shape[1]
        a = inp @ params[f"Wx{layer}"] + h @ params[f"Wh{layer}"] + params[f"b{layer}"]
        sg = _sigmoid(a[:, : 3 * H])
        i, f, o = sg[:, :H], sg[:, H : 2 * H], sg[:, 2 * H :]
        g = np.tanh(a[:, 3 * H :])
        c_new = f * c + i * g
        h_new = o * np.tanh(c_new)
        new_state.append((h_new, c_new))
        inp = h_new
    return inp @ params["Wp"] + params["bp"], new_state
