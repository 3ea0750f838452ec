"""What the browser tests share."""

# A small phone screen: the web chat's main audience (many elderly, on WeChat-sized phones).
PHONE = {"width": 360, "height": 640}
