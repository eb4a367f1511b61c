"""Shared sympy symbols, with their assumptions; ``docs/notation.md`` maps each to its code name."""
import sympy as sp

lam = sp.Symbol("lambda", positive=True)          # eigenvalue of Sigma
mu = sp.Symbol("mu", real=True)                   # mean along one eigen-direction
sigma = sp.Symbol("sigma", positive=True)         # noise level sigma(t_i)
sigma_next = sp.Symbol("sigma_next", nonnegative=True)  # sigma(t_{i+1})
sigma_max = sp.Symbol("sigma_max", positive=True)
sigma_end = sp.Symbol("sigma_end", nonnegative=True)
s = sp.Symbol("s", positive=True)                 # scale s(t_i)
s_next = sp.Symbol("s_next", positive=True)       # scale s(t_{i+1})
s_dot = sp.Symbol("s_dot", real=True)             # ds/dt at t_i
sigma_dot = sp.Symbol("sigma_dot", positive=True)  # dsigma/dt at t_i
h = sp.Symbol("h", positive=True)                 # step length t_i - t_{i+1}
eta = sp.Symbol("eta", nonnegative=True)          # per-step noise multiplier (DDIM eta; ancestral; fixed_large)
s_noise = sp.Symbol("S_noise", nonnegative=True)  # k-diffusion / EDM noise inflation of the ancestral step
s_dot_next = sp.Symbol("s_dot_next", real=True)   # ds/dt at t_{i+1}
sigma_dot_next = sp.Symbol("sigma_dot_next", positive=True)  # dsigma/dt at t_{i+1}
sigma_prev = sp.Symbol("sigma_prev", positive=True)  # sigma(t_{i-1}) (multistep)
s_prev = sp.Symbol("s_prev", positive=True)
sigma_hat = sp.Symbol("sigma_hat", positive=True)  # EDM Alg. 2: the churned level sigma_hat_i >= sigma_i
sigma_mid = sp.Symbol("sigma_mid", positive=True)  # sigma(t_i - h/2): RK4's middle stages
s_mid = sp.Symbol("s_mid", positive=True)          # s(t_i - h/2)
s_dot_mid = sp.Symbol("s_dot_mid", real=True)      # ds/dt at t_i - h/2
sigma_dot_mid = sp.Symbol("sigma_dot_mid", positive=True)  # dsigma/dt at t_i - h/2
v0 = sp.Symbol("v_0", positive=True)              # initial variance along a direction
m0 = sp.Symbol("m_0", real=True)                  # initial mean along a direction

# Non-commutative placeholders for the per-step affine algebra: matrices and vectors.
G, G_next = sp.symbols("G G_next", commutative=False)  # denoiser gains at sigma_i, sigma_{i+1}
b, b_next = sp.symbols("b b_next", commutative=False)  # denoiser offsets: D(y) = G y + b
x, z = sp.symbols("x z", commutative=False)             # state and standard-normal noise
G_prev, b_prev, x_prev = sp.symbols("G_prev b_prev x_prev", commutative=False)  # the step before (multistep)
G_mid, b_mid = sp.symbols("G_mid b_mid", commutative=False)  # the denoiser at sigma(t_i - h/2) (RK4)
# RK4 in t with an affine denoiser: the velocity f(x, t) = P_t x + q_t at t_i, t_i - h/2, t_{i+1}
P_i, P_mid, P_next, q_i, q_mid, q_next = sp.symbols("P_i P_mid P_next q_i q_mid q_next", commutative=False)

# How the export typesets the code-named symbols: the paper's notation, never a code name.
LATEX_NAMES = {
    sigma_next: r"\sigma_{i+1}", s_next: r"s_{i+1}", s_dot: r"\dot s_i", sigma_dot: r"\dot\sigma_i",
    sigma_max: r"\sigma_{\max}", sigma_end: r"\sigma_{\mathrm{end}}",
    G: r"G_{\sigma_i}", G_next: r"G_{\sigma_{i+1}}", b: r"b_{\sigma_i}", b_next: r"b_{\sigma_{i+1}}",
    x: r"x_i", z: r"z_i",
}
for _name, _tex in (("s_dot_next", r"\dot s_{i+1}"), ("sigma_dot_next", r"\dot\sigma_{i+1}"),
                    ("sigma_prev", r"\sigma_{i-1}"), ("s_prev", r"s_{i-1}"), ("s_noise", r"S_{\mathrm{noise}}"),
                    ("G_prev", r"G_{\sigma_{i-1}}"), ("b_prev", r"b_{\sigma_{i-1}}"), ("x_prev", r"x_{i-1}"),
                    ("eta", r"\eta_i"), ("sigma_hat", r"\hat\sigma_i"), ("sigma_mid", r"\sigma_{i+1/2}"),
                    ("s_mid", r"s_{i+1/2}"), ("s_dot_mid", r"\dot s_{i+1/2}"), ("sigma_dot_mid", r"\dot\sigma_{i+1/2}"),
                    ("G_mid", r"G_{\sigma_{i+1/2}}"), ("b_mid", r"b_{\sigma_{i+1/2}}"), ("P_mid", r"P_{i+1/2}"),
                    ("P_next", r"P_{i+1}"), ("q_mid", r"q_{i+1/2}"), ("q_next", r"q_{i+1}")):
    if _name in globals():
        LATEX_NAMES[globals()[_name]] = _tex
LATEX_NAMES.update({sp.Symbol("m_{end}"): r"m_{\mathrm{end}}", sp.Symbol("v_{end}"): r"v_{\mathrm{end}}"})
