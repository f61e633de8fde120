# LangChain against bitrouter (BASE_URL): ChatOpenAI on Chat Completions and on the Responses
# API, ChatAnthropic on Messages. Each streams a plain answer, runs a tool loop with a streamed
# first turn (the tool call assembled from chunks) and a whole second turn, sends an image, and
# asks for structured output.
import os

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

base = os.environ["BASE_URL"]
pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


class Word(BaseModel):
    word: str


@tool
def secret_word() -> str:
    """The secret word."""
    return "the secret word is banana"


models = {
    # LangChain picks the Responses API for gpt-6 models with tools unless told otherwise.
    "openai-chat": ChatOpenAI(model="gpt-6.1-sol", base_url=base + "/v1", api_key="unused", max_retries=0,
                              stream_usage=True, use_responses_api=False),
    "openai-responses": ChatOpenAI(model="gpt-6.1-sol", base_url=base + "/v1", api_key="unused", max_retries=0,
                                   use_responses_api=True),
    "anthropic": ChatAnthropic(model="gpt-6.1-sol", base_url=base, api_key="unused", max_retries=0,
                               max_tokens=1000),
}
for name, model in models.items():
    chunks = list(model.stream("say hi"))
    message = chunks[0]
    for chunk in chunks[1:]:
        message = message + chunk
    print(f"{name} plain: {message.text} {message.usage_metadata['output_tokens']}", flush=True)

    with_tools = model.bind_tools([secret_word])
    history = [HumanMessage("What is the secret word?")]
    first = None
    for chunk in with_tools.stream(history):
        first = chunk if first is None else first + chunk
    call = first.tool_calls[0]
    history += [first, ToolMessage(secret_word.invoke(call["args"]), tool_call_id=call["id"])]
    final = with_tools.invoke(history)
    print(f"{name} tools: {call['name']} -> {final.text}", flush=True)

    image = HumanMessage(content=[
        {"type": "text", "text": "What is in this image?"},
        {"type": "image", "base64": pixel, "mime_type": "image/png"},
    ])
    print(f"{name} image: {model.invoke([image]).text}", flush=True)
    print(f"{name} object: {model.with_structured_output(Word).invoke('Say a word.').word}", flush=True)
