"""Every input limit of the platform, in one place.

Models (field lengths), API serializers and their OpenAPI schema, dashboard forms, services and
the prompt builder all read these names, so a limit cannot disagree between layers (a brief the
API accepted must not fail later in the GPU job). tests/test_limits.py walks the layers and
checks each against this module: a new limit gets a line here and a row there.

Plain constants: no Django, no torch, so the web process, GPU workers and the engine all import it.
"""

# --- text, in characters ----------------------------------------------------------------------
MAX_NAME_CHARS = 200  # brand, campaign and segment names
# The marketer's own words, expanded by the prompt builder: 600 leaves room in every model
# family's text window for the brand and segment words (generation.prompts).
MAX_BRIEF_CHARS = 600
MAX_STYLE_NOTES_CHARS = 2000  # the brand's notes; the prompt builder quotes at most its first words
MAX_CAPTION_CHARS = 500  # a brand asset's caption
MAX_REVIEW_NOTE_CHARS = 2000
MAX_EDIT_PROMPT_CHARS = 2000  # the prompt for an edit's new material
MAX_SETTING_CHARS = 120  # a segment's setting, a short phrase
MAX_URL_CHARS = 2000  # a webhook endpoint
MAX_EXTERNAL_ID_CHARS = 128  # a viewer's id in the customer's own system

# --- counts -------------------------------------------------------------------------------------
MAX_PALETTE = 12  # brand colours
MAX_SEGMENTS = 32  # segments of a campaign (k, or the marketer's list)
MAX_VARIANTS = 8  # clips per segment in one generation or edit job (one batch)
MAX_STEPS = 200  # denoising steps of a generation or edit
# LoRA training: (lowest, highest) of each hyperparameter a marketer may set.
TRAINING_LIMITS = {"steps": (1, 20000), "rank": (1, 256), "learning_rate": (1e-7, 1.0)}

# --- a profile's or segment's attributes (free-form JSON) -------------------------------------
MAX_ATTRIBUTES_BYTES = 8 * 1024  # as UTF-8 JSON

# --- clip sizes -----------------------------------------------------------------------------------
# The largest any model family may be asked for: beyond them a job cannot fit any GPU we
# target (1920 px is 1080p landscape; 257 frames is about 10 s at 25 fps). Each family also
# has its own multiples (generation.families).
MAX_SIDE = 1920
MAX_FRAMES = 257
MAX_FPS = 60
