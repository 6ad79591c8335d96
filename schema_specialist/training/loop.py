"""The hand-written training loop: answer-only loss, grad accumulation, schedule, eval, early stop, resume."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from .data import IGNORE, Example, collate, epoch_batches
from .memory import trim_heap
from .recipe import Recipe


@dataclass
class State:
    """Everything about the loop's position that a checkpoint must carry."""

    step: int = 0
    epoch: int = 0
    group: int = 0  # optimizer steps done inside the current epoch
    tokens: int = 0
    seconds: float = 0.0
    curve: list[dict[str, Any]] = field(default_factory=list)
    best_val: float | None = None
    bad_epochs: int = 0
    last_val: tuple[int, float] | None = None
    stopped_early: bool = False


def autocast(device: str, dtype: str) -> AbstractContextManager[Any]:
    import torch

    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, dtype))


def answer_loss(model: Any, batch: dict[str, Any], device: str, dtype: str) -> tuple[Any, int]:
    """Summed cross-entropy over answer tokens only; the LM head runs on those positions alone.

    Batches are right-padded, so under causal attention no real token can see a pad: the forward takes
    no attention mask, which lets SDPA run its causal kernel instead of a masked one, and the pads' own
    outputs are never read (tests/test_train.py checks the loss is the same)."""
    import torch.nn.functional as F

    ids = batch["input_ids"].to(device)
    target = batch["labels"][:, 1:].to(device)
    keep = target != IGNORE
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with autocast(device, dtype):
        if getattr(base.config, "final_logit_softcapping", None) is None and hasattr(base, "get_decoder"):
            hidden = base.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
            logits = base.get_output_embeddings()(hidden[:, :-1][keep])
        else:  # architectures that post-process logits: take the full forward
            logits = model(input_ids=ids, use_cache=False).logits[:, :-1][keep]
    loss = F.cross_entropy(logits.float(), target[keep], reduction="sum")
    return loss, int(keep.sum().item())


class EmbeddingNoise:
    """NEFTune (Jain et al. 2023, as TRL's `neftune_noise_alpha`): while the model trains, add uniform noise
    in [-a, a], a = alpha / sqrt(length * hidden), to the input embeddings of each batch. Validation and
    inference see none. The noise comes from its own generator, reseeded for every micro-batch from the
    run's seed and the step, so a resumed run draws what an uninterrupted one does."""

    def __init__(self, model: Any, alpha: float, seed: int) -> None:
        import torch

        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.alpha = alpha
        self.seed = seed
        self.generator = torch.Generator()
        self.handle = base.get_input_embeddings().register_forward_hook(self._hook)

    def reseed(self, step: int, micro: int) -> None:
        self.generator.manual_seed((self.seed * 1_000_003 + step) * 64 + micro)

    def _hook(self, module: Any, args: Any, output: Any) -> Any:
        import torch

        if not module.training:
            return None
        scale = self.alpha / math.sqrt(output.size(1) * output.size(2))
        noise = torch.empty(output.shape, dtype=torch.float32).uniform_(-scale, scale, generator=self.generator)
        return output + noise.to(device=output.device, dtype=output.dtype)

    def remove(self) -> None:
        self.handle.remove()


def evaluate(model: Any, examples: list[Example], batch_size: int, pad_id: int, device: str,
             dtype: str, multiple: int = 1) -> float | None:
    """Token-weighted mean answer loss over `examples` (None when there are none)."""
    import torch

    if not examples:
        return None
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]))
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = collate([examples[i] for i in order[start:start + batch_size]], pad_id, multiple)
            loss, n = answer_loss(model, batch, device, dtype)
            total += float(loss)
            count += n
    model.train()
    return total / max(count, 1)


def lr_factor(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """Linear warmup, then cosine / linear decay / constant."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 1.0

    return factor


@dataclass
class Loop:
    """One training run over tokenized examples; `run()` resumes from the newest checkpoint it finds."""

    model: Any
    recipe: Recipe
    train: list[Example]
    val: list[Example]
    pad_id: int
    device: str
    dtype: str
    checkpoint_dir: Path
    meta: dict[str, Any]  # what a checkpoint must match to be resumed (recipe, data fingerprint)
    progress: bool = False
    log: Callable[[str], None] = print
    on_step: Callable[[State], None] | None = None
    state: State = field(default_factory=State)

    def __post_init__(self) -> None:
        import torch

        r = self.recipe
        self.lengths = [len(e) for e in self.train]
        self.batches_per_epoch = len(epoch_batches(self.lengths, r.batch_size, r.bucket_size, r.seed, 0))
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / r.grad_accum)
        self.total = r.max_steps if r.max_steps > 0 else r.epochs * self.steps_per_epoch
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.params = params
        self.optimizer = torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
        warmup = math.ceil(r.warmup_ratio * self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_factor(r.schedule, warmup, self.total))
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == "float16" else None
        self.noise = EmbeddingNoise(self.model, r.neftune_alpha, r.seed) if r.neftune_alpha > 0 else None

    # --- checkpoints -------------------------------------------------------------------------
    def _extra(self) -> dict[str, Any]:
        import torch

        extra = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "torch_rng": torch.get_rng_state()}
        if self.scaler is not None:
            extra["scaler"] = self.scaler.state_dict()
        if self.device == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state_all()
        return extra

    def save(self) -> None:
        meta = {**self.meta, "state": asdict(self.state)}
        save_checkpoint(self.checkpoint_dir, self.state.step, self.model, self._extra(), meta,
                        self.recipe.keep_checkpoints)

    def resume(self) -> bool:
        """Load the newest checkpoint, if any; a mismatch with this run's recipe/data is an error."""
        import torch

        from ..errors import SchemagenError

        found = list_checkpoints(self.checkpoint_dir)
        if not found:
            return False
        path = found[-1]
        meta, extra = load_checkpoint(path, self.model)
        for key, value in self.meta.items():
            if meta.get(key) != value:
                diff = key
                if isinstance(value, dict) and isinstance(meta.get(key), dict):
                    diff = ", ".join(k for k in value if meta[key].get(k) != value[k]) or key
                raise SchemagenError(f"checkpoint was made by a different run ({diff} differs); rerun the same "
                                     "command or pass --overwrite to restart", path)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        if self.scaler is not None and "scaler" in extra:
            self.scaler.load_state_dict(extra["scaler"])
        if self.device == "cuda" and "cuda_rng" in extra:
            torch.cuda.set_rng_state_all(extra["cuda_rng"])
        s = meta["state"]
        s["last_val"] = tuple(s["last_val"]) if s.get("last_val") else None
        self.state = State(**s)
        self.log(f"resumed from {path} (step {self.state.step}/{self.total})")
        return True

    # --- training ----------------------------------------------------------------------------
    def _step(self, group: list[list[int]]) -> float:
        import torch

        batches = [collate([self.train[i] for i in idx], self.pad_id, self.recipe.pad_multiple) for idx in group]
        n_answer = sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b in batches)
        total = 0.0
        for k, b in enumerate(batches):
            if self.noise is not None:
                self.noise.reseed(self.state.step, k)
            loss, _ = answer_loss(self.model, b, self.device, self.dtype)
            scaled = loss / max(n_answer, 1)
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            total += loss.item()
            self.state.tokens += b["tokens"]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.recipe.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.recipe.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / max(n_answer, 1)

    def _validate(self) -> None:
        st, r = self.state, self.recipe
        val = evaluate(self.model, self.val, r.batch_size, self.pad_id, self.device, self.dtype, r.pad_multiple)
        if val is None:
            return
        st.last_val = (st.step, val)
        st.curve.append({"step": st.step, "epoch": round(st.step / self.steps_per_epoch, 3), "val_loss": val})
        if st.best_val is None or val < st.best_val - r.min_delta:
            st.best_val, st.bad_epochs = val, 0
        else:
            st.bad_epochs += 1
            if r.patience and st.bad_epochs >= r.patience:
                st.stopped_early = True
                self.log(f"early stop: val loss has not improved for {st.bad_epochs} epochs")

    def run(self) -> State:
        from tqdm.auto import tqdm

        st, r = self.state, self.recipe
        self.model.train()
        bar = tqdm(total=self.total, initial=st.step, disable=not self.progress, unit="step", dynamic_ncols=True,
                   desc="train")
        try:
            while st.step < self.total and not st.stopped_early:
                batches = epoch_batches(self.lengths, r.batch_size, r.bucket_size, r.seed, st.epoch)
                groups = [batches[i:i + r.grad_accum] for i in range(0, len(batches), r.grad_accum)]
                while st.group < len(groups) and st.step < self.total:
                    t0 = time.perf_counter()
                    loss = self._step(groups[st.group])
                    if self.device == "cpu" and r.trim_heap:
                        trim_heap()
                    st.seconds += time.perf_counter() - t0
                    st.group += 1
                    st.step += 1
                    lr = self.scheduler.get_last_lr()[0]
                    st.curve.append({"step": st.step, "epoch": round(st.step / self.steps_per_epoch, 3),
                                     "train_loss": loss, "lr": lr})
                    tps = st.tokens / max(st.seconds, 1e-9)
                    bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tps:.0f}", refresh=False)
                    bar.update(1)
                    if r.checkpoint_every and st.step % r.checkpoint_every == 0 and st.step < self.total:
                        self.save()
                    if self.on_step is not None:
                        self.on_step(st)
                if st.group >= len(groups):  # the epoch is complete
                    self._validate()
                    st.epoch += 1
                    st.group = 0
            if self.val and (st.last_val is None or st.last_val[0] != st.step):
                self._validate()
        finally:
            bar.close()
            if self.noise is not None:
                self.noise.remove()
        return st
