"""Neural-network modules with named axes, and `Stacked` layers.

Every module is an `equinox.Module` whose parameters are NamedArrays, built by a ``init``
classmethod that takes axes and a key (haliax's convention), so it works with `jax.jit`,
`jax.grad`, `namedax.vmap` and optax like any equinox model.

    >>> import jax
    >>> import namedax as nx
    >>> Batch, Embed, Label = nx.Axis("batch", 2), nx.Axis("embed", 4), nx.Axis("label", 3)
    >>> head = nx.nn.Linear.init(Embed, Label, key=jax.random.key(0))
    >>> probs = nx.nn.softmax(head(nx.ones((Batch, Embed))), Label)
    >>> probs.axes
    (Axis('batch', 2), Axis('label', 3))
"""

from ..ops import logsumexp as logsumexp
from ._activations import (
    celu as celu,
)
from ._activations import (
    elu as elu,
)
from ._activations import (
    gelu as gelu,
)
from ._activations import (
    glu as glu,
)
from ._activations import (
    hard_sigmoid as hard_sigmoid,
)
from ._activations import (
    hard_silu as hard_silu,
)
from ._activations import (
    hard_swish as hard_swish,
)
from ._activations import (
    hard_tanh as hard_tanh,
)
from ._activations import (
    leaky_relu as leaky_relu,
)
from ._activations import (
    log_sigmoid as log_sigmoid,
)
from ._activations import (
    log_softmax as log_softmax,
)
from ._activations import (
    mish as mish,
)
from ._activations import (
    one_hot as one_hot,
)
from ._activations import (
    quick_gelu as quick_gelu,
)
from ._activations import (
    relu as relu,
)
from ._activations import (
    relu6 as relu6,
)
from ._activations import (
    selu as selu,
)
from ._activations import (
    sigmoid as sigmoid,
)
from ._activations import (
    silu as silu,
)
from ._activations import (
    soft_sign as soft_sign,
)
from ._activations import (
    softmax as softmax,
)
from ._activations import (
    softplus as softplus,
)
from ._activations import (
    swish as swish,
)
from ._activations import (
    tanh as tanh,
)
from ._batch_norm import BatchNorm as BatchNorm
from ._dropout import Dropout as Dropout
from ._dropout import dropout as dropout
from ._embedding import Embedding as Embedding
from ._linear import Linear as Linear
from ._mlp import MLP as MLP
from ._normalization import LayerNorm as LayerNorm
from ._normalization import RMSNorm as RMSNorm
from ._normalization import RmsNorm as RmsNorm
from ._stacked import Stacked as Stacked

# --- attention (owned by nn/_attention.py, _masks.py, _rotary.py, _mha.py) ---
from ._attention import dot_product_attention as dot_product_attention
from ._masks import causal_mask as causal_mask
from ._masks import padding_mask as padding_mask
from ._masks import prefix_lm_mask as prefix_lm_mask
from ._masks import segment_mask as segment_mask
from ._masks import sliding_window_mask as sliding_window_mask
from ._rotary import alibi_bias as alibi_bias
from ._rotary import alibi_slopes as alibi_slopes
from ._rotary import rotary_embedding as rotary_embedding
from ._mha import KVCache as KVCache
from ._mha import MultiHeadAttention as MultiHeadAttention
# --- end attention ---
# --- losses, convolutions, pooling (nn/_losses.py, nn/_conv.py, nn/_pooling.py) ---
from ._losses import binary_cross_entropy_with_logits as binary_cross_entropy_with_logits
from ._losses import cross_entropy as cross_entropy
from ._losses import fused_cross_entropy as fused_cross_entropy
from ._conv import Conv as Conv
from ._conv import ConvTranspose as ConvTranspose
from ._pooling import max_pool as max_pool
from ._pooling import mean_pool as mean_pool
from ._pooling import min_pool as min_pool
# --- checkpoints by name (nn/_serialize.py) ---
from ._serialize import from_state_dict as from_state_dict
from ._serialize import load as load
from ._serialize import save as save
from ._serialize import state_dict as state_dict
