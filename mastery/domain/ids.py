"""The shapes of external ids (SPEC §2), written once: models, event validation and URL
routes build their checks from these."""

STUDENT_ID = r"[A-Za-z0-9._:@-]{1,64}"
STUDENT_ID_RULE = "1-64 characters of letters, digits and . _ : @ -"
TOPIC_SLUG = r"[a-z0-9._-]{1,100}"
TOPIC_SLUG_RULE = "1-100 characters of a-z 0-9 . _ -"
COHORT_ID = STUDENT_ID
COHORT_ID_RULE = STUDENT_ID_RULE
