"""Tags, pure: a tag's kind (`kinds`), the templates that make tags (`templates`), release
versions (`versions`), which commit may hold a tag (`order`) and which build owns it
(`owners`)."""
