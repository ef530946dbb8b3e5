"""Teacher generation (thinkless/tasks/teachers.py): verified, well-formed targets, incremental writes, resume."""

from thinkless.tasks.data import DropStats
from thinkless.generation import Completion, HFGenerator, SamplingConfig
from thinkless.tasks.teachers import generate_pairs, verified_target
from thinkless.grading import Grader


class FakeTeacher:
    """Stands in for a generator: answers correctly for even problems, wrongly for odd ones."""

    def __init__(self, tok, long: bool):
        self.tokenizer, self.long, self.calls = tok, long, 0

    def generate(self, prompts, cfg, **kw):
        self.calls += len(prompts)
        out = []
        for p in prompts:
            n = int(p.split("problem ")[1].split()[0])
            ans = n if n % 2 == 0 else n + 1
            text = f"steps</think>\\boxed{{{ans}}}" if self.long else f"\\boxed{{{ans}}}"
            out.append([Completion(text, 5, True)])
        return out


def test_teacher_generation_verifies_writes_incrementally_and_resumes(tmp_path, tiny_tokenizer):
    problems = [{"problem": f"problem {i} here", "answer": str(i)} for i in range(10)]
    out = tmp_path / "pairs.jsonl"
    cfg = SamplingConfig(max_new_tokens=8)
    lt, st = FakeTeacher(tiny_tokenizer, True), FakeTeacher(tiny_tokenizer, False)
    stats = DropStats()
    recs = generate_pairs(problems[:4], lt, st, out, stats, long_cfg=cfg, short_cfg=cfg, batch_size=3,
                          progress=False)
    assert len(out.read_text().splitlines()) == 4
    assert [r["long"] is not None for r in recs] == [True, False, True, False]
    # a torn last line (killed mid-write) is ignored and redone; finished problems are not regenerated
    with out.open("a") as f:
        f.write('{"index": 4, "probl')
    lt2, st2 = FakeTeacher(tiny_tokenizer, True), FakeTeacher(tiny_tokenizer, False)
    stats = DropStats()
    recs = generate_pairs(problems, lt2, st2, out, stats, long_cfg=cfg, short_cfg=cfg, batch_size=3, progress=False)
    assert lt2.calls == 6 and st2.calls == 6
    assert len(recs) == 10 and stats["unverified_long"] == 5 and stats["unverified_short"] == 5
    assert recs[0]["long"] == "<think>\nsteps</think>\\boxed{0}"  # the training target: opening tag restored
    assert recs[0]["short"] == "<short>\\boxed{0}"


def test_teacher_generation_with_real_hf_generate(tmp_path, tiny_tokenizer):
    from thinkless.tasks.synthetic import build_tiny_model

    model = build_tiny_model(len(tiny_tokenizer), hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
                             intermediate_size=64)
    gen = HFGenerator(model, tiny_tokenizer, batch_size=4)
    gen.tokenizer = tiny_tokenizer
    stats = DropStats()
    problems = [{"problem": "1~2..........", "answer": "3"}, {"problem": "4~4..........", "answer": "8"}]
    cfg = SamplingConfig(max_new_tokens=6, temperature=1.0)
    recs = generate_pairs(problems, gen, gen, tmp_path / "p.jsonl", stats, long_cfg=cfg, short_cfg=cfg,
                          progress=False)
    # a random model verifies nothing: every response dropped and counted, no crash
    assert len(recs) == 2 and stats["unverified_long"] == 2 and stats["unverified_short"] == 2


def test_verified_target_is_strict():
    g = Grader("strict")
    assert verified_target("x</think>\\boxed{3}", "3", long=True, grader=g) == "<think>\nx</think>\\boxed{3}"
    assert verified_target("x</think>the answer is 3", "3", long=True, grader=g) is None  # no box
    assert verified_target("x</think>\\boxed{4}", "3", long=True, grader=g) is None      # wrong
    assert verified_target("x</think>y</think>\\boxed{3}", "3", long=True, grader=g) is None  # malformed
    assert verified_target("So \\boxed{3}.", "3", long=False, grader=g) == "<short>So \\boxed{3}."
    assert verified_target("<think>a</think>\\boxed{3}", "3", long=False, grader=g) is None
