"""The public OAuth2 client that lomas-client 0.5.1 signs in with."""

from django.db import migrations

CLIENT_ID = "lomas_client"


def create_lomas_client(apps, schema_editor):
    Application = apps.get_model("oauth2_provider", "Application")
    Application.objects.get_or_create(
        client_id=CLIENT_ID,
        defaults={
            "name": "lomas-client",
            "client_type": "public",
            # One grant type per application in the toolkit; accounts.oauth allows this client
            # the password and refresh-token grants too.
            "authorization_grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_secret": "",
            "hash_client_secret": False,
            "skip_authorization": True,
            "algorithm": "RS256",
            "redirect_uris": "",
        },
    )


def remove_lomas_client(apps, schema_editor):
    apps.get_model("oauth2_provider", "Application").objects.filter(client_id=CLIENT_ID).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("oauth2_provider", "__latest__"),
    ]

    operations = [migrations.RunPython(create_lomas_client, remove_lomas_client)]
