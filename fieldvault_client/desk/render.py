"""Render an opened record for people: question labels and answer texts,
in English or Spanish, from the installed package (never from the server).

The answer is a list of sections of ``{"label", "text", "pointer",
"editable"}`` rows; the page shows them as text, never as HTML.
"""

from __future__ import annotations

from typing import Any

import schemas
from schemas.instruments import get_pack

__all__ = ['LANGUAGES', 'render_record', 'code_text', 'ui_text']

LANGUAGES = ('en', 'es')

#: Field labels (question texts) by field name: (English, Spanish).
FIELD_LABELS: dict[str, tuple[str, str]] = {
    'contact_at': ('Contact date and time', 'Fecha y hora del contacto'),
    'service_area_code': ('Service area', 'Zona de servicio'),
    'precise_location': ('Precise location', 'Ubicación precisa'),
    'contact_type': ('Type of contact', 'Tipo de contacto'),
    'living_situation': ('Living situation', 'Situación de vivienda'),
    'youth_code': ('Youth code', 'Código del joven'),
    'client_id': ('Client id', 'Identificador del cliente'),
    'engaged': ('Engaged', 'Se vinculó'),
    'engagement_date': ('Engagement date', 'Fecha de vinculación'),
    'services_offered': ('Services offered', 'Servicios ofrecidos'),
    'immediate_danger': ('In immediate danger', 'En peligro inmediato'),
    'safety_action': ('Safety action', 'Medida de seguridad'),
    'notes': ('Notes', 'Notas'),
    'instrument': ('Screening instrument', 'Instrumento de evaluación'),
    'instrument_version': ('Instrument version', 'Versión del instrumento'),
    'mode': ('How it was given', 'Modo de aplicación'),
    'administered_at': ('Screened at', 'Fecha de la evaluación'),
    'assent': ('Youth assent', 'Asentimiento del joven'),
    'confidentiality_limits_explained': ('Limits of confidentiality explained',
                                         'Se explicaron los límites de la confidencialidad'),
    'confidentiality_explained_at': ('Confidentiality explained at',
                                     'Confidencialidad explicada el'),
    'responses': ('Answers', 'Respuestas'),
    'response_notes': ('Notes on answers', 'Notas sobre las respuestas'),
    'result': ('Result', 'Resultado'),
    'positive_screen': ('Positive screen', 'Evaluación positiva'),
    'concern_level': ('Level of concern', 'Nivel de preocupación'),
    'trafficking_type': ('Type of trafficking', 'Tipo de trata'),
    'override_reason': ('Reason for overriding the score', 'Motivo para cambiar el puntaje'),
    'followup_action': ('Follow-up', 'Seguimiento'),
    'preferred_name': ('Preferred name', 'Nombre preferido'),
    'legal_first_name': ('Legal first name', 'Nombre legal'),
    'legal_last_name': ('Legal last name', 'Apellido legal'),
    'name_data_quality': ('Name quality', 'Calidad del nombre'),
    'aliases': ('Other names', 'Otros nombres'),
    'date_of_birth': ('Date of birth', 'Fecha de nacimiento'),
    'dob_data_quality': ('Date of birth quality', 'Calidad de la fecha de nacimiento'),
    'age_at_screening': ('Age at screening', 'Edad en la evaluación'),
    'phones': ('Phone numbers', 'Teléfonos'),
    'email': ('Email', 'Correo electrónico'),
    'social_handles': ('Social media', 'Redes sociales'),
    'current_location_or_address': ('Current location or address', 'Ubicación o dirección actual'),
    'placement_or_shelter': ('Placement or shelter', 'Colocación o refugio'),
    'ssn_last4': ('Last four of SSN', 'Últimos cuatro del número de seguro social'),
    'id_numbers': ('Id numbers', 'Números de identificación'),
    'race_ethnicity': ('Race and ethnicity', 'Raza y etnia'),
    'sex': ('Sex', 'Sexo'),
    'gender_identity': ('Gender identity', 'Identidad de género'),
    'primary_language': ('Primary language', 'Idioma principal'),
    'country_of_birth': ('Country of birth', 'País de nacimiento'),
    'school_name': ('School', 'Escuela'),
    'guardian': ('Guardian', 'Tutor'),
    'guardian_safe': ('Guardian is safe to contact', 'Es seguro contactar al tutor'),
    'known_abuser_flags': ('Known abusers', 'Agresores conocidos'),
    'exploiter_identifiers': ('Exploiter identifiers', 'Datos del explotador'),
    'distinguishing_marks': ('Distinguishing marks', 'Señas particulares'),
    'photo': ('Photo', 'Foto'),
    'consent_type': ('Type of consent', 'Tipo de consentimiento'),
    'recipient_org': ('Recipient organisation', 'Organización receptora'),
    'purpose': ('Purpose', 'Propósito'),
    'data_categories': ('Data shared', 'Datos compartidos'),
    'cosigned_by': ('Co-signed by', 'Firmado también por'),
    'signer': ('Signed by', 'Firmado por'),
    'youth_is_minor': ('Youth is a minor', 'El joven es menor de edad'),
    'minor_consent_basis': ("Basis of a minor's consent", 'Base del consentimiento del menor'),
    'guardian_relationship': ('Guardian relationship', 'Parentesco del tutor'),
    'abuser_relationships': ('Relationships of abusers', 'Parentesco de los agresores'),
    'signer_name': ('Name of the signer', 'Nombre de quien firma'),
    'signature_image': ('Signature', 'Firma'),
    'guardian_signer_name': ("Guardian's name", 'Nombre del tutor'),
    'guardian_signature_image': ("Guardian's signature", 'Firma del tutor'),
    'method': ('Method', 'Método'),
    'effective_at': ('Effective from', 'Vigente desde'),
    'expires_at': ('Expires', 'Vence'),
    'revoked_at': ('Revoked', 'Revocado'),
    'condition_of_service': ('Condition of service', 'Condición para el servicio'),
    'name': ('Name', 'Nombre'), 'phone': ('Phone', 'Teléfono'),
    'relationship': ('Relationship', 'Parentesco'), 'platform': ('Platform', 'Plataforma'),
    'handle': ('Handle', 'Usuario'), 'type': ('Type', 'Tipo'), 'value': ('Value', 'Valor'),
    'lat': ('Latitude', 'Latitud'), 'lon': ('Longitude', 'Longitud'),
    'accuracy_m': ('Accuracy (m)', 'Precisión (m)'), 'description': ('Description', 'Descripción'),
    'timeframe': ('Timeframe', 'Periodo'), 'text': ('Text', 'Texto'),
}

#: Answer texts of coded values: (English, Spanish). Others are spelled out.
CODE_TEXTS: dict[str, tuple[str, str]] = {
    'yes': ('Yes', 'Sí'), 'no': ('No', 'No'), 'unsure': ('Not sure', 'No está seguro'),
    'declined': ('Declined to answer', 'Prefirió no responder'),
    'given': ('Given', 'Dado'), 'ever': ('Ever', 'Alguna vez'),
    'past_3_months': ('In the past 3 months', 'En los últimos 3 meses'),
    'past_12_months': ('In the past 12 months', 'En los últimos 12 meses'),
    'current': ('Now', 'Actualmente'),
    'street': ('Street outreach', 'Calle'), 'drop_in': ('Drop-in center', 'Centro de acogida'),
    'hotline': ('Hotline', 'Línea de ayuda'), 'school': ('School', 'Escuela'),
    'hospital': ('Hospital', 'Hospital'), 'other': ('Other', 'Otro'),
    'place_not_meant_for_habitation': ('Place not meant for habitation',
                                       'Lugar no apto para vivir'),
    'emergency_shelter': ('Emergency shelter', 'Refugio de emergencia'),
    'info': ('Information', 'Información'), 'food': ('Food', 'Comida'),
    'hygiene': ('Hygiene supplies', 'Artículos de higiene'),
    'crisis_support': ('Crisis support', 'Apoyo en crisis'),
    'shelter_referral': ('Shelter referral', 'Remisión a refugio'),
    'medical_referral': ('Medical referral', 'Remisión médica'),
    'program_offer': ('Program offered', 'Oferta del programa'),
    'interview': ('Interview', 'Entrevista'),
    'self_administered': ('Self-administered', 'Autoadministrado'),
    'no_concern': ('No concern', 'Sin preocupación'),
    'possible_concern': ('Possible concern', 'Posible preocupación'),
    'clear_concern': ('Clear concern', 'Preocupación clara'),
    'none': ('None', 'Ninguno'), 'offered_program': ('Program offered', 'Se ofreció el programa'),
    'referred_full_assessment': ('Referred to a full assessment',
                                 'Remitido a una evaluación completa'),
    'mandated_report_considered': ('Mandated report considered',
                                   'Se consideró la denuncia obligatoria'),
    'client_doesnt_know': ("Doesn't know", 'No sabe'),
    'client_prefers_not_to_answer': ('Prefers not to answer', 'Prefiere no responder'),
    'data_not_collected': ('Not collected', 'No se recogió'),
    'female': ('Female', 'Femenino'), 'male': ('Male', 'Masculino'),
    'case_management': ('Case management', 'Gestión del caso'),
    'safety_planning': ('Safety planning', 'Plan de seguridad'),
    'crisis_response': ('Crisis response', 'Respuesta a una crisis'),
    'service_referral': ('Service referral', 'Remisión a un servicio'),
    'legal_advocacy': ('Legal advocacy', 'Apoyo legal'),
    'court_order': ('Court order', 'Orden judicial'),
    'mandated_report': ('Mandated report', 'Denuncia obligatoria'),
    'youth_request': ("The youth's request", 'Solicitud del joven'),
    'record_correction': ('Correcting the record', 'Corrección del registro'),
    'supervisor_review': ('Supervisor review', 'Revisión de supervisión'),
    'contact': ('Contact', 'Contacto'), 'identity': ('Identity', 'Identidad'),
    'screening': ('Screening', 'Evaluación'), 'consent': ('Consent', 'Consentimiento'),
}

#: Spanish prompts of the shipped instrument items (English comes from the pack).
ITEM_PROMPTS_ES: dict[str, str] = {
    'QYIT_1': '¿Alguna vez trabajaste o hiciste otras cosas en un lugar que te pareció '
              'peligroso o inseguro?',
    'QYIT_2': '¿Alguna vez tuviste miedo de dejar un trabajo por amenazas o violencia contra '
              'ti o tu familia?',
    'QYIT_3': '¿Alguna vez recibiste algo (un lugar donde quedarte, regalos, comida, dinero) '
              'a cambio de sexo?',
    'QYIT_4': '¿Alguna vez trabajaste para alguien que te pidió mentir sobre el trabajo?',
}

#: Texts of the page itself that depend on the record language.
UI_TEXTS: dict[str, tuple[str, str]] = {
    'true': ('Yes', 'Sí'), 'false': ('No', 'No'), 'empty': ('(not recorded)', '(sin dato)'),
    'record': ('Record', 'Registro'), 'details': ('Record details', 'Datos del registro'),
}


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == 'es' else pair[0]


def ui_text(key: str, lang: str) -> str:
    """Return one page text in ``lang``."""
    return _pick(UI_TEXTS[key], lang)


def code_text(code: str, lang: str) -> str:
    """Return the answer text of a coded value (spelled out when not listed)."""
    if code in CODE_TEXTS:
        return _pick(CODE_TEXTS[code], lang)
    return code.replace('_', ' ').capitalize()


def field_label(name: str, lang: str) -> str:
    """Return the question label of a field."""
    if name in FIELD_LABELS:
        return _pick(FIELD_LABELS[name], lang)
    return name.replace('_', ' ').capitalize()


def _text(value: Any, lang: str, *, coded: bool) -> str:
    if value is None or value == [] or value == '':
        return ui_text('empty', lang)
    if value is True or value is False:
        return ui_text('true' if value else 'false', lang)
    if isinstance(value, list):
        return '; '.join(_text(item, lang, coded=coded) for item in value)
    if isinstance(value, dict):
        return '; '.join(f'{field_label(key, lang)}: {_text(item, lang, coded=coded)}'
                         for key, item in value.items())
    if coded and isinstance(value, str):
        return code_text(value, lang)
    return str(value)


_META = ('_id', '_rev', '_revisions', '_conflicts', 'type', 'schema', 'org', 'owner', 'device',
         'created_at', 'updated_at', 'fle')


def render_record(document: dict[str, Any], lang: str = 'en') -> dict[str, Any]:
    """Return the view of an opened record: labelled rows, in ``lang``.

    Identifying fields are marked ``editable`` (when they hold a string or
    nothing) so the desk can offer them for correction.
    """
    lang = lang if lang in LANGUAGES else 'en'
    kind = document.get('type', '')
    identifying = set(schemas.identifying_paths(kind)) if kind in schemas.RECORD_TYPES else set()
    rows = []
    for name, value in document.items():
        if name in _META or name in ('responses', 'response_notes'):
            continue
        pointer = f'/{name}'
        coded = isinstance(value, (str, list, dict)) and pointer not in identifying \
            and name not in ('youth_code', 'client_id', 'service_area_code', 'recipient_org',
                             'instrument', 'instrument_version')
        rows.append({'label': field_label(name, lang),
                     'text': _text(value, lang, coded=coded and not _looks_like_time(value)),
                     'pointer': pointer, 'identifying': pointer in identifying,
                     'editable': pointer in identifying and (value is None
                                                             or isinstance(value, str)),
                     'value': value if pointer in identifying and isinstance(value, str)
                     else None})
    sections = [{'title': ui_text('details', lang), 'rows': rows}]
    if kind == 'screening':
        sections.append(_screening_answers(document, lang))
    return {'id': document.get('_id'), 'rev': document.get('_rev'), 'type': kind,
            'title': code_text(kind, lang), 'lang': lang, 'sections': sections}


def _looks_like_time(value: Any) -> bool:
    return isinstance(value, str) and len(value) >= 10 and value[4:5] == '-' \
        and value[:4].isdigit()


def _screening_answers(document: dict[str, Any], lang: str) -> dict[str, Any]:
    try:
        pack = get_pack(str(document.get('instrument')), document.get('instrument_version'))
        prompts = {code: item.prompt for code, item in pack.items.items()}
        title = pack.title
    except (KeyError, LookupError, schemas.errors.SchemasError):  # unknown pack: show codes
        prompts, title = {}, str(document.get('instrument'))
    notes = {note.get('item_code'): note.get('text')
             for note in document.get('response_notes') or [] if isinstance(note, dict)}
    rows = []
    for response in document.get('responses') or []:
        code = response.get('item_code')
        label = ITEM_PROMPTS_ES.get(code) if lang == 'es' else None
        label = label or prompts.get(code) or code
        text = code_text(response.get('value', ''), lang)
        if response.get('timeframe'):
            text += f' ({code_text(response["timeframe"], lang)})'
        if notes.get(code):
            text += f' — {field_label("notes", lang)}: {notes[code]}'
        rows.append({'label': label, 'text': text, 'pointer': None, 'identifying': False,
                     'editable': False, 'value': None})
    return {'title': f'{field_label("responses", lang)}: {title}', 'rows': rows}
