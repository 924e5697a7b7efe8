"""Loss curves read from the log lines real training code prints."""

from __future__ import annotations

import math
import random
import time

import pytest

from agent.jobs.loss import LossTracker, MetricPoint

TQDM_THEN_DICT = (
    "\r 45%|████▌     | 450/1000 [02:30<03:03,  3.00it/s]"
    "\r                                                   "
    "\r{'loss': 0.4123, 'grad_norm': 1.2345, 'learning_rate': 1.8e-05, 'num_tokens': 1843200.0, "
    "'mean_token_accuracy': 0.8712, 'epoch': 0.45}"
)


def feed_all(lines: list[str], tracker: LossTracker | None = None) -> tuple[LossTracker, list[MetricPoint | None]]:
    tracker = tracker or LossTracker()
    return tracker, [tracker.feed(line) for line in lines]


# -- Transformers / TRL Trainer dicts ---------------------------------------------------------


def test_trainer_dicts_give_train_points_with_the_other_metrics_as_extra():
    tracker, (a, b) = feed_all([
        "{'loss': 2.0312, 'grad_norm': 3.1875, 'learning_rate': 1.9e-05, 'epoch': 0.06}",
        "{'loss': 1.7421, 'grad_norm': 2.2031, 'learning_rate': 1.8e-05, 'epoch': 0.12}",
    ])
    assert (a.kind, a.loss, b.loss) == ("train", 2.0312, 1.7421)
    assert a.extra == {"grad_norm": 3.1875, "learning_rate": 1.9e-05, "epoch": 0.06}
    # the Trainer prints no step: points are numbered in order
    assert (a.step, b.step, b.step_inferred) == (0, 1, True)
    assert tracker.series("train") == ((0, 2.0312), (1, 1.7421))


def test_a_trainer_dict_glued_to_a_tqdm_bar_takes_its_step_from_the_bar():
    point = LossTracker().feed(TQDM_THEN_DICT)
    assert point is not None
    assert (point.step, point.loss, point.step_inferred) == (450, 0.4123, False)
    assert point.extra["mean_token_accuracy"] == 0.8712 and point.extra["num_tokens"] == 1843200.0


def test_trl_dpo_and_grpo_metrics_with_slashes_are_kept():
    dpo = ("{'loss': 0.6931, 'grad_norm': 5.0625, 'learning_rate': 5e-07, 'rewards/chosen': 0.0012, "
           "'rewards/rejected': -0.0005, 'rewards/accuracies': 0.5, 'rewards/margins': 0.0017, "
           "'logps/chosen': -250.31, 'logps/rejected': -260.12, 'logits/chosen': -2.51, 'epoch': 0.02}")
    grpo = ("{'loss': 0.0, 'grad_norm': 0.2156, 'learning_rate': 1e-06, 'num_tokens': 52480.0, "
            "'completions/mean_length': 187.25, 'rewards/accuracy_reward/mean': 0.375, 'reward': 0.375, "
            "'reward_std': 0.4183, 'frac_reward_zero_std': 0.25, 'kl': 0.00041, 'entropy': 0.8125, 'epoch': 0.01}")
    tracker, (p_dpo, p_grpo) = feed_all([dpo, grpo])
    assert p_dpo.loss == 0.6931 and p_dpo.extra["rewards/margins"] == 0.0017 and p_dpo.extra["logps/chosen"] == -250.31
    assert p_grpo.loss == 0.0 and p_grpo.extra["reward"] == 0.375 and p_grpo.extra["kl"] == 0.00041
    assert p_grpo.extra["rewards/accuracy_reward/mean"] == 0.375


def test_eval_dicts_are_eval_points_at_the_current_training_step():
    tracker, (train, evaluation) = feed_all([
        TQDM_THEN_DICT,
        "{'eval_loss': 0.3912, 'eval_runtime': 4.21, 'eval_samples_per_second': 47.5, "
        "'eval_steps_per_second': 5.94, 'eval_mean_token_accuracy': 0.88, 'epoch': 0.45}",
    ])
    assert evaluation.kind == "eval" and evaluation.loss == 0.3912 and evaluation.step == train.step == 450
    assert tracker.series("eval") == ((450, 0.3912),)
    assert tracker.series("train") == ((450, 0.4123),)
    assert tracker.latest == train and tracker.latest_eval == evaluation


def test_the_end_of_run_summary_is_kept_apart_from_the_curve():
    tracker, results = feed_all([
        "{'loss': 0.52, 'grad_norm': 1.1, 'learning_rate': 2e-06, 'epoch': 2.97}",
        "{'train_runtime': 1234.5678, 'train_samples_per_second': 24.3, 'train_steps_per_second': 3.04, "
        "'total_flos': 1.2e+16, 'train_loss': 0.6104, 'epoch': 3.0}",
    ])
    summary = results[1]
    assert summary.kind == "final" and summary.loss == 0.6104 and tracker.final == summary
    assert tracker.series("train") == ((0, 0.52),)  # the run's mean loss is not a point on the curve
    assert tracker.latest.loss == 0.52


def test_values_printed_as_numpy_scalars_tensors_or_strings():
    tracker, (a, b, c) = feed_all([
        "{'eval_loss': np.float64(0.3341), 'eval_accuracy': np.float64(0.9125), 'epoch': 1.0}",
        "{'loss': tensor(1.2500, device='cuda:0'), 'epoch': 0.5}",
        "{'loss': '0.6899', 'grad_norm': '3.268', 'learning_rate': '4.5e-05', 'epoch': '0.1'}",
    ])
    assert (a.kind, a.loss, a.extra["eval_accuracy"]) == ("eval", 0.3341, 0.9125)
    assert b.loss == 1.25
    assert c.loss == 0.6899 and c.extra["learning_rate"] == 4.5e-05


# -- JSON lines ---------------------------------------------------------------------------------


def test_json_lines_with_steps_and_wandb_style_keys():
    tracker, (a, b, c) = feed_all([
        '{"step": 10, "loss": 0.5012, "lr": 0.0003, "tokens_per_sec": 51234.5}',
        '{"train/global_step": 20, "train/loss": 0.4811, "train/learning_rate": 0.0003}',
        '{"step": 20, "eval/loss": 0.5502, "eval/perplexity": 1.734}',
    ])
    assert (a.step, a.loss, a.extra) == (10, 0.5012, {"lr": 0.0003, "tokens_per_sec": 51234.5})
    assert (b.step, b.loss, b.kind) == (20, 0.4811, "train")
    assert (c.step, c.loss, c.kind) == (20, 0.5502, "eval")


# -- prints from hand-written loops ---------------------------------------------------------------


@pytest.mark.parametrize("line, step, loss", [
    ("step 10 | loss 0.523 | lr 3.00e-04 | grad_norm 0.91", 10, 0.523),
    ("Step 10/1000, loss=0.523", 10, 0.523),
    ("epoch 1 step 50 train_loss: 0.43", 50, 0.43),
    ("iter 100: loss 2.3412, time 45.23ms, mfu 12.34%", 100, 2.3412),  # nanoGPT
    ("[10/500] loss: 0.5231", 10, 0.5231),
    ("Epoch [1/10], Step [100/600], Loss: 0.2345", 100, 0.2345),  # PyTorch tutorial
    ("Train Epoch: 1 [640/60000 (1%)]\tLoss: 0.543210", 640, 0.54321),  # PyTorch MNIST example
    ("| epoch   1 |   200/ 2983 batches | lr 20.00 | ms/batch 45.30 | loss  7.51 | ppl  1825.50", 200, 7.51),
    ("2024-05-01 12:00:03,120 - INFO - Training Loss: 1.2045 (step 300)", 300, 1.2045),
    ("\x1b[32mstep 40\x1b[0m loss=\x1b[1m0.812\x1b[0m", 40, 0.812),
])
def test_key_value_prints(line, step, loss):
    point = LossTracker().feed(line)
    assert point is not None, line
    assert (point.kind, point.step, point.loss) == ("train", step, loss)


def test_key_value_prints_keep_their_other_numbers():
    point = LossTracker().feed("step 10 | loss 0.523 | lr 3.00e-04 | grad_norm 0.91")
    assert point.extra == {"lr": 3e-4, "grad_norm": 0.91}


def test_tqdm_postfix_gives_the_step_from_the_bar():
    point = LossTracker().feed(" 12%|█▏        | 120/1000 [00:30<03:40,  4.00it/s, loss=0.523, lr=0.0002]")
    assert (point.step, point.loss, point.extra["lr"]) == (120, 0.523, 0.0002)


def test_a_line_with_train_and_eval_loss_records_both_and_eval_once():
    tracker, _ = feed_all([
        "step 250: train loss 2.1234, val loss 2.2345",  # nanoGPT's eval line
        "Epoch 0: 100%|██████████| 313/313 [00:10<00:00, 30.1it/s, v_num=0, train_loss=0.234, val_loss=0.251]",
    ])
    assert tracker.series("train")[0] == (250, 2.1234)
    assert tracker.series("eval")[0] == (250, 2.2345)
    # Lightning redraws the same val_loss on every refresh of the bar: one eval point per value
    tracker, _ = feed_all([
        f"Epoch 1: {n * 10}%|███| {n * 31}/313 [00:0{n}<00:05, 30.1it/s, v_num=0, train_loss=0.{300 - n}, val_loss=0.251]"
        for n in range(1, 6)
    ])
    assert len(tracker.series("train")) == 5 and tracker.series("eval") == ((31, 0.251),)


def test_validation_words_make_eval_points():
    for line in ("Validation Loss: 0.6123", "val_loss=0.6123", "epoch 3 | valid_loss 0.6123", "test loss: 0.6123"):
        point = LossTracker().feed(line)
        assert point is not None and point.kind == "eval" and point.loss == 0.6123, line


# -- steps ----------------------------------------------------------------------------------


def test_a_step_counter_that_restarts_each_epoch_keeps_the_axis_moving_forward():
    lines = [f"Epoch [{e}/2], Step [{s}/300], Loss: {1 / (e * 300 + s):.5f}" for e in (1, 2) for s in (100, 200, 300)]
    tracker, points = feed_all(lines)
    steps = [p.step for p in points]
    assert steps == [100, 200, 300, 400, 500, 600]
    assert steps == sorted(steps)


def test_eval_lines_without_a_step_sit_at_the_last_train_step():
    tracker, (_, _, evaluation) = feed_all(["step 90 loss 0.7", "step 100 loss 0.69", "eval_loss = 0.71"])
    assert evaluation.step == 100 and evaluation.step_inferred


# -- what is not a loss ---------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "Loss function: CrossEntropy",
    "Loss function: CrossEntropyLoss, lr: 0.001, batch size: 32",
    "Using loss_type='sigmoid' for DPO",
    "Epoch 1: val_loss improved from inf to 0.48123, saving model to ckpt.keras",
    "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768",
    "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0",
    "{'loss_scale': 1024.0, 'step': 7}",
    "We track the loss over time and report it at the end.",
    "processed 512 samples across 4 workers in 0.12s",
    "",
])
def test_prose_and_lookalikes_are_ignored(line):
    assert LossTracker().feed(line) is None


def test_non_finite_losses_are_reported_but_not_plotted():
    tracker, (ok, bad, worse) = feed_all(["step 1 loss 2.5", "step 2 loss nan", "{'loss': inf, 'epoch': 0.1}"])
    assert ok.finite and not bad.finite and math.isnan(bad.loss) and math.isinf(worse.loss)
    assert tracker.series("train") == ((1, 2.5),)
    assert tracker.non_finite == 2 and tracker.first_non_finite.step == 2
    assert tracker.latest == ok


def test_garbage_unicode_and_huge_lines_never_raise():
    rng = random.Random(7)
    alphabet = "loss:= {}[]'\"0123456789.eE-+/\\\r\n\t\x1b█▏ñ日本語🙂nanINF_step|,()"
    tracker = LossTracker()
    for _ in range(5000):
        tracker.feed("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))))
    assert all(math.isfinite(loss) for _, loss in tracker.series("train"))
    huge = LossTracker()
    assert huge.feed("loss " * 500_000) is None
    # a huge line is scanned around its loss, so its point is still found
    assert huge.feed("x" * 1_000_000 + " loss=0.25 step=3").loss == 0.25
    assert huge.feed("\r".join(["  5%|▌ | 50/1000"] * 20_000) + "\r{'loss': 1.5}").step == 50
    assert not huge.feed("loss: 1e999999 step 1e400").finite
    assert huge.feed("\udcff loss 0.1 \x00").loss == 0.1
    assert huge.series("train") == ((3, 0.25), (50, 1.5), (52, 0.1))  # the inf took step 51


def test_a_huge_line_costs_little():
    tracker = LossTracker()
    start = time.perf_counter()
    tracker.feed("loss = " + "1" * 2_000_000)
    tracker.feed("y " * 1_000_000 + "loss")
    assert time.perf_counter() - start < 0.5


# -- bounds ----------------------------------------------------------------------------------


def test_points_stay_bounded_and_cover_the_whole_run():
    tracker = LossTracker(max_points=500)
    for step in range(1, 20_001):
        tracker.feed(f"step {step} | loss {10 / step:.6f}")
    train = tracker.series("train")
    assert len(train) <= 501
    steps = [s for s, _ in train]
    assert steps[0] == 1 and steps[-1] == 20_000  # the start is not dropped, the newest is there
    assert steps == sorted(steps)
    gaps = {b - a for a, b in zip(steps[:-2], steps[1:-1])}
    assert len(gaps) == 1  # evenly spread, not dense at the end
    assert tracker.latest.step == 20_000 and len(tracker.points) == len(train)


def test_points_merge_train_and_eval_in_step_order():
    tracker, _ = feed_all(["step 1 loss 3.0", "step 2 loss 2.0", "step 2 eval_loss 2.5", "step 3 loss 1.5"])
    assert [(p.step, p.kind) for p in tracker.points] == [(1, "train"), (2, "train"), (2, "eval"), (3, "train")]


def test_throughput_on_a_busy_log():
    """Not an assertion on speed (machines differ): prints lines/s for the report."""
    noise = "2024-05-01 12:00:01 INFO worker.py:123 -- processed batch of 512 samples in 0.12s"
    samples = {
        "no loss": [noise] * 50_000,
        "trainer dict + bar": [TQDM_THEN_DICT] * 20_000,
        "tqdm postfix": [f" 12%|█▏ | {n}/1000 [00:30<03:40,  4.00it/s, loss=0.523]" for n in range(20_000)],
        "1 in 10 lines": ([noise] * 9 + ["iter 100: loss 2.3412, time 45.23ms, mfu 12.34%"]) * 5_000,
    }
    for name, lines in samples.items():
        tracker = LossTracker()
        start = time.perf_counter()
        for line in lines:
            tracker.feed(line)
        elapsed = time.perf_counter() - start
        print(f"loss parsing, {name}: {len(lines) / elapsed:,.0f} lines/s")


def _trainer_log(n: int) -> list[str]:
    """A fast Trainer run without step keys: train dicts, an eval dict every 500 lines, a
    diverged value once, chatter in between."""
    lines = []
    for i in range(n):
        lines.append(f"{{'loss': {2.5 - i / n:.4f}, 'grad_norm': 1.1, 'learning_rate': 5e-05, 'epoch': {i / n:.3f}}}")
        if i % 500 == 499:
            lines.append(f"{{'eval_loss': {2.0 - i / n:.4f}, 'eval_runtime': 1.2, 'epoch': {i / n:.3f}}}")
        if i == 1234:
            lines.append("{'loss': nan, 'grad_norm': nan, 'learning_rate': 5e-05, 'epoch': 0.6}")
        if i % 97 == 0:
            lines.append("Saving model checkpoint to out/checkpoint")
    return lines


def test_a_fast_batch_reads_some_train_lines_and_every_eval_nan_and_last_one():
    lines = _trainer_log(2000)
    every, sampled = LossTracker(), LossTracker()
    for line in lines:
        every.feed(line)
    # in batches as the app gets them at ~15 a second from a job printing 20,000 lines/s
    for start in range(0, len(lines), 1300):
        assert sampled.feed_many(lines[start:start + 1300])
    assert sampled.latest == every.latest  # the newest value and its step, exactly
    assert sampled.series("eval") == every.series("eval")  # every eval point, at the same steps
    assert sampled.non_finite == every.non_finite == 1
    train_all, train_read = set(every.series("train")), sampled.series("train")
    assert set(train_read) <= train_all  # the same x-axis: each point read sits where it did
    assert 100 < len(train_read) < len(train_all) / 4  # and far fewer lines were parsed
    assert sampled.lines_parsed < every.lines_parsed / 4


def test_a_fast_batch_keeps_every_val_loss_of_lines_naming_both():
    # nanoGPT prints both losses on one line; Lightning "Validation Loss: x" lines stand alone
    lines = []
    for step in range(3000):
        lines.append(f"iter {step}: loss {3.0 - step / 3000:.4f}, time 12.3ms")
        if step % 250 == 0:
            lines.append(f"step {step}: train loss {3.0 - step / 3000:.4f}, val loss {3.1 - step / 3000:.4f}")
            lines.append(f"Validation Loss: {3.2 - step / 3000:.4f}")
    every, sampled = LossTracker(), LossTracker()
    for line in lines:
        every.feed(line)
    sampled.feed_many(lines)
    assert sampled.series("eval") == every.series("eval") and len(every.series("eval")) >= 12
    assert sampled.latest == every.latest
    assert sampled.lines_parsed < every.lines_parsed / 4


def test_a_slow_batch_is_read_line_by_line():
    lines = _trainer_log(40)
    every, batched = LossTracker(), LossTracker()
    for line in lines:
        every.feed(line)
    assert batched.feed_many(lines)
    assert batched.points == every.points and batched.lines_parsed == every.lines_parsed
    assert not LossTracker().feed_many(["Saving model checkpoint", "epoch done"])
