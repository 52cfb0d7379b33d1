"""Client integrations (OpenAI, Anthropic); each imports its library lazily."""
