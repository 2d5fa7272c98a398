import pytest

from sync_pipelines.core.database import redact_url


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:s3cret@h:5432/db", "postgresql://u@h:5432/db"),
    ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db?password=s3cret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://h/db?sslpassword=s3cret", "postgresql://h/db?sslpassword=***"),
    ("postgresql://u:s3cret@h/db?application_name=a@b", "postgresql://u@h/db?application_name=a@b"),
    ("host=h user=u password=s3cret dbname=d", "host=h user=u password=*** dbname=d"),
    (r"host=h password = 'it\'s s3cret' dbname=d", "host=h password=*** dbname=d"),  # libpq escapes with \
    ("postgresql://u@h/db", "postgresql://u@h/db"),
])
def test_redact_url_removes_every_password(url, shown):
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)
