"""Query a served Thinkless model with the OpenAI client: the model's choice, forced think, forced short, a threshold.

Serve a trained model first (docs/serving.md):

    vllm serve runs/demo/train/model --logits-processors thinkless.vllm_think_bias:ThinkBias \
        --middleware thinkless.serving.check_request

then:

    python examples/openai_client.py --base-url http://127.0.0.1:8000/v1 --question "3 ~ 4 . . . . . . . . . ."

* auto: nothing extra; the model's first token is <short> or <think>;
* forced: the chat template's `thinking` variable, `extra_body={"chat_template_kwargs": {"thinking": "on"|"off"}}`
  (the control token is prefilled in the prompt, so the reply starts after it);
* threshold: `extra_body={"vllm_xargs": {"think_bias": b}}` adds b to the <think> logit at the first generated
  position only (needs the server's --logits-processors flag). The API's own `logit_bias` acts at every position:
  a large one makes the model write <think> again and again.
"""

from __future__ import annotations

import argparse
import json

from openai import OpenAI

THINK, SHORT = "<think>", "<short>"


def mode_of(reply: str, forced: str | None) -> str:
    if forced:
        return forced
    s = reply.lstrip()
    return "think" if s.startswith(THINK) else "short" if s.startswith(SHORT) else "none"


def ask(client: OpenAI, model: str, question: str, *, extra: dict, max_tokens: int | None = None) -> tuple[str, int]:
    # max_tokens None: the server allows what fits the model's context after the prompt (a fixed default would be
    # refused by a small model: the demo's context is 256 tokens)
    kw = {} if max_tokens is None else {"max_tokens": max_tokens}
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                       temperature=0.0, extra_body=extra, **kw)
    return r.choices[0].message.content or "", r.usage.completion_tokens


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--model", default=None, help="served model name (default: the server's first model)")
    ap.add_argument("--question", default="What is 17 * 23?")
    ap.add_argument("--bias", type=float, nargs="*", default=[-4.0, 4.0], help="think biases to try")
    ap.add_argument("--max-tokens", type=int, default=None, help="default: what fits the model's context")
    ap.add_argument("--json", action="store_true", help="one JSON object per reply")
    a = ap.parse_args(argv)
    client = OpenAI(base_url=a.base_url, api_key="EMPTY")
    model = a.model or client.models.list().data[0].id
    cases = [("auto", None, {}), ("forced think", "think", {"chat_template_kwargs": {"thinking": "on"}}),
             ("forced short", "short", {"chat_template_kwargs": {"thinking": "off"}})]
    cases += [(f"think bias {b:+g}", None, {"vllm_xargs": {"think_bias": b}}) for b in a.bias]
    out = []
    for label, forced, extra in cases:
        reply, tokens = ask(client, model, a.question, extra=extra, max_tokens=a.max_tokens)
        rec = {"case": label, "mode": mode_of(reply, forced), "tokens": tokens, "reply": reply}
        out.append(rec)
        print(json.dumps(rec) if a.json else f"{label:16s} mode={rec['mode']:5s} tokens={tokens:4d}  {reply!r}")
    return out


if __name__ == "__main__":
    main()
