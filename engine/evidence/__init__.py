"""Evidence and safety controls around verdicts: referral records, flood quarantine, reviewers' feedback and
prevalence statistics. The audit log they write to is engine.audit."""
