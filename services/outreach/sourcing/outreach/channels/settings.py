"""Settings of the 13 outreach channels: vendor base URLs, sender identities, timeouts.

The manual's §10 credentials (``TWILIO_API_KEY``, ``LINE_API_KEY``, ...) and
``SANDBOX_PROVIDERS`` live on the kernel's :class:`sourcing.common.config.Settings`; this class
adds what the vendors need besides a key. Document every field in .env.example. With
``SANDBOX_PROVIDERS`` on, :func:`channel_base_url` routes every vendor to the local sandbox
(``{SANDBOX_URL}/<vendor>``) instead.
"""

from __future__ import annotations

from types import MappingProxyType

from pydantic import Field, SecretStr

from sourcing.common.config import Settings
from sourcing.common.models.enums import Channel


class ChannelSettings(Settings):
    """What the channel adapters read: the credentials (kernel) and each vendor's own fields."""

    # --- Outreach channels (services/outreach channels/) ---
    # Per-request timeout of channel vendor calls, in seconds (each call also retries briefly).
    CHANNEL_TIMEOUT_SECONDS: float = Field(default=15.0, gt=0)

    # SMS + phone: Twilio REST API base (Messages.json and Calls.json live under it).
    TWILIO_BASE_URL: str = "https://api.twilio.com"
    # Secret of the Twilio API key in TWILIO_API_KEY (SK...); without it the auth token is used.
    TWILIO_API_SECRET: SecretStr | None = None
    # Caller id / sender of SMS and calls (E.164, a number owned by the Twilio account).
    TWILIO_FROM_NUMBER: str = "+15005550006"
    # Optional Twilio Messaging Service (MG...) used as SMS sender instead of TWILIO_FROM_NUMBER.
    TWILIO_MESSAGING_SERVICE_SID: str | None = None

    # Email: SendGrid v3 API base.
    EMAIL_PROVIDER_BASE_URL: str = "https://api.sendgrid.com"
    # Sender address (must be a verified sender or domain at the email provider).
    EMAIL_FROM_ADDRESS: str = "outreach@example.com"
    # Display name shown with the sender address.
    EMAIL_FROM_NAME: str = "Expert Sourcing"
    # Subject used when an outreach message has none.
    EMAIL_DEFAULT_SUBJECT: str = "Invitation to a paid expert consultation"

    # LinkedIn: your Unipile DSN (https://apiN.unipile.com:PORT), per Unipile account.
    LINKEDIN_BASE_URL: str = "https://api1.unipile.com:13111"
    # Unipile id of the connected LinkedIn account that sends the messages.
    LINKEDIN_ACCOUNT_ID: str = "sandbox-linkedin-account"

    # WhatsApp: 2Chat API base.
    WHATSAPP_2CHAT_BASE_URL: str = "https://api.p.2chat.io"
    # WhatsApp number connected to 2Chat that sends the messages (E.164).
    WHATSAPP_2CHAT_FROM_NUMBER: str = "+15005550006"

    # Respond.io developer API base.
    RESPONDIO_BASE_URL: str = "https://api.respond.io"
    # Optional Respond.io channel id to send through (default: the contact's last channel).
    RESPONDIO_CHANNEL_ID: int | None = None

    # iMessage: Sendblue API base (Twilio has no iMessage).
    IMESSAGE_BASE_URL: str = "https://api.sendblue.co"
    # Sendblue API key id (header sb-api-key-id); the iMessage channel's credential.
    IMESSAGE_API_KEY: SecretStr | None = None
    # Sendblue API secret key (header sb-api-secret-key).
    IMESSAGE_API_SECRET: SecretStr | None = None
    # Sendblue line that sends the iMessages (E.164).
    IMESSAGE_FROM_NUMBER: str = "+15005550006"

    # LINE Messaging API base (LINE_API_KEY is the channel access token).
    LINE_BASE_URL: str = "https://api.line.me"

    # WeChat official account API base (WECHAT_API_KEY is the app secret).
    WECHAT_BASE_URL: str = "https://api.weixin.qq.com"
    # WeChat official account app id, exchanged with the app secret for an access token.
    WECHAT_APP_ID: str = "wx0000000000000000"

    # Viber Bot API base (VIBER_API_KEY is the bot's auth token).
    VIBER_BASE_URL: str = "https://chatapi.viber.com"
    # Bot sender name shown to the recipient (max 28 characters).
    VIBER_SENDER_NAME: str = Field(default="Expert Sourcing", max_length=28)

    # Telegram Bot API base (TELEGRAM_BOT_TOKEN goes into the path).
    TELEGRAM_BASE_URL: str = "https://api.telegram.org"

    # KakaoTalk Message API base (KAKAOTALK_API_KEY is the sender's user access token).
    KAKAOTALK_BASE_URL: str = "https://kapi.kakao.com"
    # Link attached to KakaoTalk text templates (its domain must be registered in the Kakao app).
    KAKAOTALK_LINK_URL: str = "https://example.com"

    # Voicemail drop: Slybroadcast gateway base (VOICEMAIL_DROP_API_KEY is the account password).
    VOICEMAIL_DROP_BASE_URL: str = "https://www.slybroadcast.com"
    # Slybroadcast account login (c_uid).
    VOICEMAIL_DROP_ACCOUNT: str = "outreach@example.com"
    # Caller id shown with the voicemail (E.164).
    VOICEMAIL_DROP_CALLER_ID: str = "+15005550006"
    # Recording stored in the Slybroadcast account, used when the body is not an audio URL.
    VOICEMAIL_DROP_AUDIO_NAME: str = "expert-invite"
    # --- end outreach channels ---


# The vendor behind each channel: the sandbox path prefix, metrics label and base-URL field.
CHANNEL_VENDORS: MappingProxyType[Channel, str] = MappingProxyType(
    {
        Channel.PHONE: "twilio",
        Channel.SMS: "twilio",
        Channel.EMAIL: "sendgrid",
        Channel.LINKEDIN: "unipile",
        Channel.WHATSAPP: "2chat",
        Channel.RESPONDIO: "respondio",
        Channel.IMESSAGE: "sendblue",
        Channel.LINE: "line",
        Channel.WECHAT: "wechat",
        Channel.VIBER: "viber",
        Channel.TELEGRAM: "telegram",
        Channel.KAKAOTALK: "kakao",
        Channel.VOICEMAIL: "slybroadcast",
    }
)
VENDOR_BASE_URL_FIELDS: MappingProxyType[str, str] = MappingProxyType(
    {
        "twilio": "TWILIO_BASE_URL",
        "sendgrid": "EMAIL_PROVIDER_BASE_URL",
        "unipile": "LINKEDIN_BASE_URL",
        "2chat": "WHATSAPP_2CHAT_BASE_URL",
        "respondio": "RESPONDIO_BASE_URL",
        "sendblue": "IMESSAGE_BASE_URL",
        "line": "LINE_BASE_URL",
        "wechat": "WECHAT_BASE_URL",
        "viber": "VIBER_BASE_URL",
        "telegram": "TELEGRAM_BASE_URL",
        "kakao": "KAKAOTALK_BASE_URL",
        "slybroadcast": "VOICEMAIL_DROP_BASE_URL",
    }
)


def sandbox_url(settings: Settings) -> str:
    """The sandbox server's base URL, without a trailing slash."""
    return settings.SANDBOX_URL.rstrip("/")


def channel_base_url(settings: ChannelSettings, key: str | Channel) -> str:
    """Base URL of a channel's vendor (``key``: a :class:`Channel` or a vendor name).

    The configured base normally; ``{SANDBOX_URL}/<vendor>`` when ``SANDBOX_PROVIDERS`` is on.
    """
    vendor = CHANNEL_VENDORS[key] if isinstance(key, Channel) else key
    field = VENDOR_BASE_URL_FIELDS.get(vendor)
    if field is None:
        raise KeyError(f"unknown channel vendor {vendor!r}")
    if settings.SANDBOX_PROVIDERS:
        return f"{sandbox_url(settings)}/{vendor}"
    return str(getattr(settings, field)).rstrip("/")
