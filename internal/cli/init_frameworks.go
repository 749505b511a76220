package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// djangoProject returns the Django project package of dir (the directory
// next to manage.py that holds settings.py and wsgi.py), or "".
func djangoProject(dir string) string {
	if !exists(dir, "manage.py") {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	for _, e := range ents {
		if e.IsDir() && exists(dir, filepath.Join(e.Name(), "settings.py")) && exists(dir, filepath.Join(e.Name(), "wsgi.py")) {
			return e.Name()
		}
	}
	return ""
}

// mentions reports whether file (in dir) names any of the packages, as a
// whole word, case-insensitively.
func mentions(dir, file string, pkgs ...string) bool {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return false
	}
	for _, p := range pkgs {
		if regexp.MustCompile(`(?im)(^|[\s'"])` + regexp.QuoteMeta(p) + `($|[\s'"=<>~!,\[;])`).Match(b) {
			return true
		}
	}
	return false
}

// pgAccessory is a process-runtime Postgres (Debian's postgresql package)
// that initialises its cluster in its volume on first start, with the
// password of the POSTGRES_PASSWORD secret; `backup: postgres` dumps it.
const pgAccessory = `  db:
    # Debian's postgresql package (apt install postgresql; the version in the path may differ).
    # The cluster is created in the pgdata volume on first start, for user app with the POSTGRES_PASSWORD secret.
    command: >-
      sh -c 'if [ ! -s "$$PGDATA/PG_VERSION" ]; then printf %s "$$POSTGRES_PASSWORD" > "$$PGDATA.pw" &&
      /usr/lib/postgresql/15/bin/initdb -D "$$PGDATA" -U app --auth=scram-sha-256 --pwfile="$$PGDATA.pw"; rm -f "$$PGDATA.pw"; fi;
      exec /usr/lib/postgresql/15/bin/postgres -D "$$PGDATA" -p "$$PORT" -k /tmp -c listen_addresses=127.0.0.1'
    user: postgres
    port: 5432
    env: {PGDATA: $MOORAGE_VOLUME_PGDATA/main, POSTGRES_USER: app, POSTGRES_DB: postgres}
    secrets: [POSTGRES_PASSWORD]
    volumes: ["pgdata:/var/lib/postgresql/data"]
    health: {command: "/usr/lib/postgresql/15/bin/pg_isready -h 127.0.0.1 -p $PORT", interval: 2s}
    backup: postgres
`

// redisAccessory is a process-runtime Redis (Debian's redis-server).
const redisAccessory = `  redis:
    command: redis-server --port $PORT --bind 127.0.0.1 --dir $MOORAGE_VOLUME_REDISDATA
    port: 6379
    volumes: ["redisdata:/data"]
    health: {command: "redis-cli -p $PORT ping", interval: 2s}
`

// djangoSpec is the spec of a Django project: gunicorn, migrations as a
// release task, and when it uses them Celery (a worker, and beat as a
// singleton), Postgres and Redis.
func djangoSpec(dir, app, project string) string {
	celery := exists(dir, filepath.Join(project, "celery.py")) || mentions(dir, "requirements.txt", "celery")
	pg := mentions(dir, "requirements.txt", "psycopg2", "psycopg2-binary", "psycopg", "dj-database-url")
	redis := celery || mentions(dir, "requirements.txt", "redis", "django-redis")
	var b strings.Builder
	fmt.Fprintf(&b, `# moorage.yaml: how moorage deploys %[1]s, a Django project (%[2]s). Reference: docs/spec.md
app: %[1]s
runtime: process
build:
  command: sh -c "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"

env:
  DJANGO_SETTINGS_MODULE: %[2]s.settings
  DJANGO_DEBUG: "false"
`, app, project)
	if pg {
		b.WriteString(`  # Read these in settings.py (DATABASES): the password is the POSTGRES_PASSWORD secret.
  DB_HOST: $MOORAGE_ACCESSORY_DB_HOST
  DB_PORT: $MOORAGE_ACCESSORY_DB_PORT
  DB_USER: app
  DB_NAME: postgres
`)
	}
	if redis {
		b.WriteString("  REDIS_URL: redis://${MOORAGE_ACCESSORY_REDIS_ADDR}/0\n")
	}
	if celery {
		b.WriteString("  CELERY_BROKER_URL: redis://${MOORAGE_ACCESSORY_REDIS_ADDR}/0\n")
	}
	b.WriteString("\n# Set each with `moorage config set --secret NAME` before the first deploy.\nsecrets: [SECRET_KEY")
	if pg {
		b.WriteString(", POSTGRES_PASSWORD")
	}
	b.WriteString(`]

# Run once per deploy, in the new release, before any traffic moves.
release:
  - .venv/bin/python manage.py migrate --noinput

services:
  web:
`)
	fmt.Fprintf(&b, `    command: .venv/bin/gunicorn %s.wsgi -b 127.0.0.1:$PORT --workers 3
    replicas: 2
    health: {tcp: true}             # better: a view that answers 200, e.g. {path: /healthz}
    # http: {hosts: [example.com], tls: auto}
`, project)
	if celery {
		fmt.Fprintf(&b, `  worker:
    command: .venv/bin/celery -A %[1]s worker --loglevel INFO
    stop_timeout: 60s               # lets running tasks finish on a deploy
  beat:
    command: .venv/bin/celery -A %[1]s beat --loglevel INFO --schedule $MOORAGE_VOLUME_BEAT/celerybeat-schedule
    singleton: true                 # never two schedulers, even during a deploy
`, project)
	}
	if pg || redis {
		b.WriteString("\naccessories:\n")
		if pg {
			b.WriteString(pgAccessory)
		}
		if redis {
			b.WriteString(redisAccessory)
		}
	}
	if celery {
		b.WriteString("\nvolumes:\n  beat: {mount: /app/beat}\n")
	}
	if pg {
		b.WriteString("\nbackups:\n  schedule: \"0 3 * * *\"\n")
	}
	b.WriteString("\ndeploy:\n  monitor: 10s                    # a crash or failed health check in this window rolls back\n")
	return b.String()
}

// railsSpec is the spec of a Rails app: puma through rails server,
// db:migrate as a release task, and when the Gemfile has them Sidekiq,
// Postgres (pg) and Redis.
func railsSpec(dir, app string) string {
	sidekiq := mentions(dir, "Gemfile", "sidekiq")
	pg := mentions(dir, "Gemfile", "pg")
	redis := sidekiq || mentions(dir, "Gemfile", "redis")
	var b strings.Builder
	fmt.Fprintf(&b, `# moorage.yaml: how moorage deploys %s, a Rails app. Reference: docs/spec.md
app: %[1]s
runtime: process
build:
  command: sh -c "bundle config set --local deployment true && bundle config set --local without 'development test' && bundle install && env SECRET_KEY_BASE_DUMMY=1 bin/rails assets:precompile"

env:
  RAILS_ENV: production
  RAILS_LOG_TO_STDOUT: "1"
  RAILS_SERVE_STATIC_FILES: "1"
`, app)
	if pg {
		b.WriteString(`  # Read these in config/database.yml: the password is the POSTGRES_PASSWORD secret.
  DB_HOST: $MOORAGE_ACCESSORY_DB_HOST
  DB_PORT: $MOORAGE_ACCESSORY_DB_PORT
  DB_USER: app
  DB_NAME: postgres
`)
	}
	if redis {
		b.WriteString("  REDIS_URL: redis://${MOORAGE_ACCESSORY_REDIS_ADDR}/0\n")
	}
	b.WriteString("\n# Set each with `moorage config set --secret NAME` before the first deploy.\nsecrets: [SECRET_KEY_BASE")
	if pg {
		b.WriteString(", POSTGRES_PASSWORD")
	}
	b.WriteString(`]

# Run once per deploy, in the new release, before any traffic moves.
release:
  - bin/rails db:migrate

services:
  web:
    command: bin/rails server -b 127.0.0.1 -p $PORT
    replicas: 2
    health: {path: /up}             # Rails 7.1+; older apps: a route that answers 200, or {tcp: true}
    # http: {hosts: [example.com], tls: auto}
`)
	if sidekiq {
		b.WriteString(`  worker:
    command: bundle exec sidekiq
    stop_timeout: 30s               # Sidekiq's own shutdown timeout is 25s
`)
	}
	if pg || redis {
		b.WriteString("\naccessories:\n")
		if pg {
			b.WriteString(pgAccessory)
		}
		if redis {
			b.WriteString(redisAccessory)
		}
	}
	if pg {
		b.WriteString("\nbackups:\n  schedule: \"0 3 * * *\"\n")
	}
	b.WriteString("\ndeploy:\n  monitor: 10s                    # a crash or failed health check in this window rolls back\n")
	return b.String()
}
