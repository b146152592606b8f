"""What `OPTIONS` answers under /api/ (REST_FRAMEWORK's DEFAULT_METADATA_CLASS).

A module of its own: DRF reads the setting while it defines `APIView`, before the schema
module's imports (simplejwt's views) could load."""

from rest_framework.metadata import BaseMetadata


class ApiMetadata(BaseMetadata):
    """The view's name, description and media types; the inputs are described by
    `/api/schema/`. Not DRF's `actions`: to build them, SimpleMetadata makes the view's
    serializer, which most of these views choose per action (an AssertionError, a 500, found
    by the schema fuzzing), and looks up the object of a detail URL, unaudited."""

    def determine_metadata(self, request, view):
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
        }
