import factory

from mastery.models import Cohort, Student, Topic, User

PASSWORD = "correct-horse-battery-staple"


class StudentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Student
        django_get_or_create = ("student_id",)

    student_id = factory.Sequence(lambda n: f"s-{n:05d}")


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"topic.{n}")
    name = factory.LazyAttribute(lambda t: t.slug.title())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    role = User.Role.STUDENT
    password = factory.django.Password(PASSWORD)
    is_staff = factory.LazyAttribute(lambda u: u.role in (User.Role.TEACHER, User.Role.ADMIN))
    is_superuser = factory.LazyAttribute(lambda u: u.role == User.Role.ADMIN)


class CohortFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Cohort
        django_get_or_create = ("cohort_id",)
        skip_postgeneration_save = True

    cohort_id = factory.Sequence(lambda n: f"cohort-{n}")
    name = factory.LazyAttribute(lambda c: c.cohort_id.title())

    @factory.post_generation
    def students(self, create, extracted, **kwargs):
        if create and extracted:
            self.students.add(*extracted)

    @factory.post_generation
    def teachers(self, create, extracted, **kwargs):
        if create and extracted:
            self.teachers.add(*extracted)
