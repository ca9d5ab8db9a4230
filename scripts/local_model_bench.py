"""llama.cpp (llama-cpp-python) on the same GGUF and prompt as
`roster-local`'s `speed` example: load time, time to the first token,
prefill and decode tokens per second, one JSON line."""
import json, sys, time
from llama_cpp import Llama

model_file, prompt_file = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 128
started = time.perf_counter()
llm = Llama(model_path=model_file, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
load = time.perf_counter() - started
text = open(prompt_file).read()
prompt = llm.tokenizer().encode(
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n", add_bos=False, special=True)
begun = time.perf_counter()
first = None
count = 0
for _ in llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0):
    now = time.perf_counter()
    if first is None:
        first = now
    count += 1
    if count >= max_tokens:
        break
end = time.perf_counter()
print(json.dumps({
    "engine": "llama.cpp",
    "threads": threads,
    "load_ms": round(load * 1000),
    "prompt_tokens": len(prompt),
    "output_tokens": count,
    "ttft_ms": (first - begun) * 1000,
    "prefill_tok_s": len(prompt) / (first - begun),
    "decode_tok_s": (count - 1) / (end - first) if count > 1 else 0,
}))
