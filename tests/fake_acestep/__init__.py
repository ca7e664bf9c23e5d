"""Tests of the fake ACE-Step API server itself."""
