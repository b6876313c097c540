"""The zoo's models in PyTorch 1.13, written once: the golden generators
(gen_*.py here), the PyTorch benchmarks (bench/*_torch.py) and the PyTorch
recipes (examples/torch/) all build them from this module.

Each class has cformer's layout and, through named(), its parameter names,
so a test can load the same weights into both. Import it after torch's
thread count is set (bench/torch_harness.py's import_torch does that).
"""
import math

import torch
import torch.nn as nn


def sinusoid(n, d, start=0):
    """Positions start .. start+n-1 as cf_sinusoidal_encoding computes them:
    sin at even columns, cos at odd ones, the frequency exp(2i * -ln(10000) / d)
    and the angle rounded to float32 as PyTorch's tutorial does. exp, sin and
    cos run in float64 and are rounded once: torch's float32 versions differ
    by an ulp between processors (AVX2, AVX-512), and a fixture trained on
    them would differ far more."""
    pos = torch.arange(start, start + n, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp((torch.arange(0, d, 2, dtype=torch.float32)
                      * (-math.log(10000.0) / d)).double()).float()
    angle = (pos * freq).double()
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(angle).float()
    pe[:, 1::2] = torch.cos(angle[:, :d // 2]).float()
    return pe


def causal_mask(n):
    """True above the diagonal: position i may not look at j > i."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool), 1)


class Transformer(nn.Module):
    """cf_transformer: torch.nn.Transformer (batch_first, ReLU) between
    nn.Embedding tables (padding row `pad`) scaled by sqrt(d_model) plus the
    sinusoidal encoding, dropout after that sum, and an nn.Linear generator.

    shared: one table for source and target that is also the generator's
    weight (cf_transformer's share_embeddings and tie_output).
    embed_std: when set, the tables are drawn from N(0, embed_std^2) with
    the padding row zero (the G2P recipe), instead of nn.Embedding's N(0, 1).
    max_len: the longest sequence the positional table covers.
    Masks: source key padding (encoder self attention and cross attention),
    target key padding (unless pad_mask is False) and causal.
    """

    def __init__(self, src_vocab, tgt_vocab, d_model, heads, enc_layers, dec_layers, ff,
                 dropout=0.0, norm_first=False, shared=False, embed_std=None, pad=0,
                 max_len=1024):
        super().__init__()
        self.d_model, self.pad, self.shared = d_model, pad, shared
        self.src_embed = nn.Embedding(src_vocab, d_model, padding_idx=pad)
        self.tgt_embed = (self.src_embed if shared else
                          nn.Embedding(tgt_vocab, d_model, padding_idx=pad))
        if embed_std is not None:
            with torch.no_grad():
                for e in [self.src_embed] if shared else [self.src_embed, self.tgt_embed]:
                    e.weight.normal_(0, embed_std)
                    e.weight[pad].zero_()
        self.transformer = nn.Transformer(
            d_model=d_model, nhead=heads, num_encoder_layers=enc_layers,
            num_decoder_layers=dec_layers, dim_feedforward=ff, dropout=dropout,
            batch_first=True, norm_first=norm_first)
        self.generator = nn.Linear(d_model, tgt_vocab)
        if shared:
            self.generator.weight = self.tgt_embed.weight
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("pe", sinusoid(max_len, d_model), persistent=False)

    def named(self):
        """Parameters under cformer's names (torch's, without `transformer.`)."""
        out = {"src_embed.weight": self.src_embed.weight}
        if not self.shared:
            out["tgt_embed.weight"] = self.tgt_embed.weight
        for k, v in self.transformer.named_parameters():
            out[k] = v
        if not self.shared:
            out["generator.weight"] = self.generator.weight
        out["generator.bias"] = self.generator.bias
        return out

    def embed(self, table, tokens):
        x = table(tokens) * math.sqrt(self.d_model)
        return self.dropout(x + self.pe[:tokens.shape[1]])

    def encode(self, src):
        return self.transformer.encoder(self.embed(self.src_embed, src),
                                        src_key_padding_mask=src == self.pad)

    def decode(self, tgt, memory, src, pad_mask=True):
        """Logits [B, T, V] of the target tokens after each prefix."""
        y = self.transformer.decoder(
            self.embed(self.tgt_embed, tgt), memory, tgt_mask=causal_mask(tgt.shape[1]),
            tgt_key_padding_mask=tgt == self.pad if pad_mask else None,
            memory_key_padding_mask=src == self.pad)
        return self.generator(y)

    def forward(self, src, tgt):
        return self.decode(tgt, self.encode(src), src)


class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D]


class Attention(nn.Module):
    """timm's, written out (PyTorch 1.13 has no fused attention). When
    keep_map is set, the weights of the last call stay in .map."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.keep_map, self.map = False, None

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        if self.keep_map:
            self.map = attn
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """cf_vit: timm's VisionTransformer (timm/models/vision_transformer.py)
    with its state_dict names: PatchEmbed with a Conv2d, pre-norm blocks,
    exact GELU, LayerNorm eps 1e-6, the classifier on the CLS token after
    the final norm; dropout 0 (timm's p=0 dropout layers are left out: they
    hold nothing and change nothing). The CLS token and the positions start
    at zero, as timm's before its own initialisation."""

    def __init__(self, img_size, patch_size, in_chans, num_classes, embed_dim, depth,
                 num_heads, mlp_ratio):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, embed_dim))
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)

    def keep_maps(self, on=True):
        """Keep each block's attention weights of the next call (.attn.map)."""
        for b in self.blocks:
            b.attn.keep_map = on

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = self.norm(self.blocks(x + self.pos_embed))
        return self.head(x[:, 0])


class Seq2SeqEncoder(nn.Module):
    """A bidirectional GRU or LSTM over each source packed to its length."""

    def __init__(self, vocab, emb, hidden, layers, dropout, pad, cell):
        super().__init__()
        self.pad, self.cell = pad, cell
        self.embedding = nn.Embedding(vocab, emb, padding_idx=pad)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(emb, hidden, num_layers=layers, bidirectional=True, batch_first=True,
                       dropout=dropout if layers > 1 else 0.0)

    def forward(self, src, drop):
        """keys [B, S, 2H] (zero at padding) and each row's last forward and
        backward states of the top layer, [B, 2H]."""
        n = src.shape[1]
        lengths = ((src != self.pad) * torch.arange(1, n + 1)).max(1).values
        packed = nn.utils.rnn.pack_padded_sequence(drop(self.embedding(src)), lengths,
                                                   batch_first=True, enforce_sorted=False)
        out, h_n = self.rnn(packed)
        if self.cell == "lstm":
            h_n = h_n[0]
        keys, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=n)
        return keys, torch.cat((h_n[-2], h_n[-1]), dim=1)


class AdditiveAttention(nn.Module):
    """Bahdanau: score v^T tanh(W_q s + W_k k)."""

    def __init__(self, state, hidden, attn):
        super().__init__()
        self.query_proj = nn.Linear(state, attn, bias=False)
        self.key_proj = nn.Linear(2 * hidden, attn)
        self.v = nn.Linear(attn, 1, bias=False)

    def keys(self, keys):
        return self.key_proj(keys)

    def score(self, s, proj):
        return self.v(torch.tanh(proj + self.query_proj(s).unsqueeze(1))).squeeze(-1)


class LuongAttention(nn.Module):
    """Luong: dot scores s . k (the state as wide as a key, 2H), or general
    scores s^T W_a k (W_a = key_proj.weight [state, 2H])."""

    def __init__(self, state, hidden, general):
        super().__init__()
        if general:
            self.key_proj = nn.Linear(2 * hidden, state, bias=False)
        self.general = general

    def keys(self, keys):
        return self.key_proj(keys) if self.general else keys

    def score(self, s, proj):
        return (proj * s.unsqueeze(1)).sum(-1)


class Seq2SeqDecoder(nn.Module):
    """One step: attend from the previous state (padding masked to -inf),
    a GRUCell or LSTMCell over [emb ; context], predict from
    [state ; context ; emb]."""

    def __init__(self, vocab, emb, hidden, state, attn, pad, cell, score):
        super().__init__()
        self.cell = cell
        self.embedding = nn.Embedding(vocab, emb, padding_idx=pad)
        self.attention = (AdditiveAttention(state, hidden, attn) if score == "additive" else
                          LuongAttention(state, hidden, score == "general"))
        self.rnn = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(emb + 2 * hidden, state)
        self.out = nn.Linear(state + 2 * hidden + emb, vocab)

    def forward(self, y, state, keys, proj, mask, drop):
        s = state[0] if self.cell == "lstm" else state
        emb = drop(self.embedding(y))
        e = self.attention.score(s, proj)
        a = torch.softmax(e.masked_fill(mask, float("-inf")), dim=-1)
        ctx = torch.bmm(a.unsqueeze(1), keys).squeeze(1)
        state = self.rnn(torch.cat((emb, ctx), dim=1), state)
        s = state[0] if self.cell == "lstm" else state
        return self.out(torch.cat((s, ctx, emb), dim=1)), state, a


class Seq2Seq(nn.Module):
    """cf_seq2seq (zoo/seq2seq.c) with its state_dict names: the encoder
    above, a bridge tanh(Linear(2H -> state)) of its last states (an LSTM's
    cell starts at zero), and the decoder step, run with teacher forcing.
    cell: "gru" or "lstm"; score: "additive", "dot" (the decoder state is
    then 2H wide) or "general". Dropout is applied to both embeddings and
    between encoder layers."""

    def __init__(self, src_vocab, tgt_vocab, emb, hidden, attn, layers=1, dropout=0.0, pad=0,
                 cell="gru", score="additive"):
        super().__init__()
        state = 2 * hidden if score == "dot" else hidden
        self.pad, self.cell = pad, cell
        self.encoder = Seq2SeqEncoder(src_vocab, emb, hidden, layers, dropout, pad, cell)
        self.bridge = nn.Linear(2 * hidden, state)
        self.decoder = Seq2SeqDecoder(tgt_vocab, emb, hidden, state, attn, pad, cell, score)
        self.dropout = nn.Dropout(dropout)

    def encode(self, src):
        """(keys, projected keys, padding mask, first decoder state)."""
        keys, last = self.encoder(src, self.dropout)
        s = torch.tanh(self.bridge(last))
        state = (s, torch.zeros_like(s)) if self.cell == "lstm" else s
        return keys, self.decoder.attention.keys(keys), src == self.pad, state

    def step(self, y, state, enc):
        """Logits [B, V], the new state and the attention weights [B, S] of
        one step from tokens y [B] and a state, over encode()'s enc."""
        return self.decoder(y, state, *enc[:3], self.dropout)

    def forward(self, src, tgt, teacher_forcing=True):
        """Logits [B, T - 1, V] and attention weights [B, T - 1, S] of
        tgt[:, 1:] after tgt[:, 0]; without teacher forcing each step reads
        the previous step's argmax."""
        enc = self.encode(src)
        state, y = enc[3], tgt[:, 0]
        logits, weights = [], []
        for t in range(tgt.shape[1] - 1):
            if t > 0:
                y = tgt[:, t] if teacher_forcing else logits[-1].argmax(-1)
            out, state, a = self.step(y, state, enc)
            logits.append(out)
            weights.append(a)
        return torch.stack(logits, 1), torch.stack(weights, 1)

    def greedy(self, src, max_len, bos, eos):
        """Tokens [B, <= max_len]: each step's argmax, pad after eos; stops
        when every row has said eos."""
        enc = self.encode(src)
        state = enc[3]
        y = torch.full((src.shape[0],), bos, dtype=torch.long)
        done = torch.zeros(src.shape[0], dtype=torch.bool)
        tokens = []
        for _ in range(max_len):
            out, state, _ = self.step(y, state, enc)
            y = out.argmax(-1).masked_fill(done, self.pad)
            done |= y == eos
            tokens.append(y)
            if done.all():
                break
        return torch.stack(tokens, 1)
