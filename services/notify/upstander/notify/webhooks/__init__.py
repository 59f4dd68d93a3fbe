"""Outside webhooks: endpoints per org, Standard Webhooks signatures, retries, replay."""
