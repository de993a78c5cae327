"""Model providers: anthropic, openai, openai_compatible (any base URL), scripted."""
