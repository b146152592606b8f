from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A login. Exactly one role decides what it may see and do (SPEC §3)."""

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        TEACHER = "teacher", "Teacher"
        ADMIN = "admin", "Admin"
        SERVICE = "service", "Service"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)

    class Meta:
        db_table = "mastery_user"
