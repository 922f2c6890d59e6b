"""What an image build needs besides the database: reading a model's own files, writing
the build context (Dockerfile, requirements, scoring server), and talking to a Docker
engine. No Django models here; `deployments.services.images` drives it."""
