"""The WeChat gateway fixtures of tests/unit/wechat, for the back office's WeChat tests."""

from tests.unit.wechat.test_wechat_gateway import api, make_gateway, rasa, wechat  # noqa: F401
