# Generates bot/domain/responses.yml from one table, so the three languages stay in step.
import sys

import yaml

R = {}


def add(name, en, lv, ru, buttons=None):
    R[name] = (en, lv, ru, buttons)


add(
    "utter_greet",
    "Hello! I'm the Service Desk assistant. Ask me about passwords, VPN, e-mail, Wi-Fi, printers or anything else IT — or ask for a person at any time.",
    "Sveiki! Esmu IT atbalsta asistents. Jautājiet par parolēm, VPN, e-pastu, Wi-Fi, printeriem vai ko citu — vai jebkurā brīdī lūdziet savienot ar cilvēku.",
    "Здравствуйте! Я ассистент службы поддержки. Спрашивайте о паролях, VPN, почте, Wi-Fi, принтерах и обо всём, что связано с IT, — или в любой момент попросите связать вас с сотрудником.",
)
add(
    "utter_goodbye",
    "Goodbye, and have a good day!",
    "Uz redzēšanos, jauku dienu!",
    "До свидания, хорошего дня!",
)
add(
    "utter_you_are_welcome",
    "You're welcome! Anything else I can help with?",
    "Lūdzu! Vai varu vēl ar ko palīdzēt?",
    "Пожалуйста! Могу ещё чем-нибудь помочь?",
)
add(
    "utter_iamabot",
    "I'm a bot — the Service Desk's virtual assistant. If you'd rather talk to a person, just say so.",
    "Esmu robots — IT atbalsta virtuālais asistents. Ja vēlaties runāt ar cilvēku, vienkārši pasakiet.",
    "Я бот — виртуальный ассистент службы поддержки. Если хотите поговорить с человеком, просто скажите.",
)
add(
    "utter_chitchat",
    "I'm here to help with IT questions: passwords, VPN, e-mail, devices, software and more. What can I do for you?",
    "Esmu šeit, lai palīdzētu ar IT jautājumiem: parolēm, VPN, e-pastu, ierīcēm, programmām un citu. Kā varu palīdzēt?",
    "Я помогаю с вопросами по IT: пароли, VPN, почта, устройства, программы и многое другое. Чем могу помочь?",
)
add(
    "utter_insult",
    "I'm sorry this is frustrating. Tell me what's not working, or ask for a person and the Service Desk will take over.",
    "Atvainojiet, ka tas sagādā neērtības. Pastāstiet, kas nedarbojas, vai lūdziet savienot ar cilvēku — IT atbalsts pārņems sarunu.",
    "Понимаю, что это неприятно. Расскажите, что не работает, или попросите связать вас с сотрудником — служба поддержки подключится.",
)
add(
    "utter_out_of_scope",
    "That's outside what I can help with — I only know about IT support. Is there an IT problem I can help you with?",
    "Ar to diemžēl nevaru palīdzēt — es pārzinu tikai IT atbalsta jautājumus. Vai ir kāda IT problēma, ar ko varu palīdzēt?",
    "С этим я, к сожалению, помочь не могу — я разбираюсь только в вопросах IT-поддержки. Есть ли проблема с IT, с которой я могу помочь?",
)
YESNO = [("/affirm", "Yes, it helped", "Jā, palīdzēja", "Да, помогло"), ("/not_helpful", "No", "Nē", "Нет")]
add("utter_ask_feedback", "Did this help?", "Vai tas palīdzēja?", "Это помогло?", YESNO)
add(
    "utter_glad_it_helped",
    "Great, glad it helped! Anything else?",
    "Lieliski, priecājos, ka palīdzēja! Vēl kaut kas?",
    "Отлично, рад, что помогло! Что-нибудь ещё?",
)
add(
    "utter_clarify",
    "I found a few articles that might fit. Which one is closest?",
    "Atradu dažus rakstus, kas varētu derēt. Kurš ir vistuvākais?",
    "Я нашёл несколько подходящих статей. Какая ближе всего к вашему вопросу?",
)
add(
    "utter_offer_alternatives",
    "Sorry that didn't help. Maybe one of these fits better?",
    "Atvainojiet, ka tas nepalīdzēja. Varbūt kāds no šiem der labāk?",
    "Жаль, что это не помогло. Может быть, подойдёт что-то из этого?",
)
add(
    "utter_no_answer",
    "I couldn't find an answer to that in the knowledge base. Shall I connect you to a person from the Service Desk?",
    "Zināšanu bāzē neatradu atbildi uz šo jautājumu. Vai savienot jūs ar IT atbalsta darbinieku?",
    "Я не нашёл ответа на этот вопрос в базе знаний. Связать вас с сотрудником службы поддержки?",
    [
        ("/affirm", "Yes, please", "Jā, lūdzu", "Да, пожалуйста"),
        ("/deny", "No, I'll rephrase", "Nē, pajautāšu citādi", "Нет, переформулирую"),
    ],
)
add(
    "utter_other_language_answer",
    "I only found this in another language:",
    "Atradu to tikai citā valodā:",
    "Я нашёл это только на другом языке:",
)
add(
    "utter_service_unavailable",
    "Sorry, I can't reach the knowledge base right now. Please try again in a minute, or ask for a person.",
    "Atvainojiet, pašlaik nevaru piekļūt zināšanu bāzei. Lūdzu, mēģiniet vēlreiz pēc minūtes vai lūdziet savienot ar cilvēku.",
    "Извините, сейчас я не могу обратиться к базе знаний. Попробуйте ещё раз через минуту или попросите связать вас с сотрудником.",
)
add(
    "utter_ask_rephrase",
    "OK. Could you describe the problem in other words?",
    "Labi. Vai varat aprakstīt problēmu citiem vārdiem?",
    "Хорошо. Опишите, пожалуйста, проблему другими словами.",
)
add(
    "utter_anything_else",
    "OK. Is there anything else I can help with?",
    "Labi. Vai varu vēl ar ko palīdzēt?",
    "Хорошо. Могу ещё чем-нибудь помочь?",
)
add(
    "utter_default",
    "Sorry, I didn't get that. Could you rephrase it?",
    "Atvainojiet, nesapratu. Vai varat pateikt citiem vārdiem?",
    "Извините, я не понял. Можете сказать по-другому?",
)
add(
    "utter_handoff_intro",
    'I\'ll hand this over to a person from the Service Desk. Two quick questions first (you can type "cancel" at any time).',
    'Nodošu šo IT atbalsta darbiniekam. Vispirms divi īsi jautājumi (jebkurā brīdī varat rakstīt "atcelt").',
    "Я передам вопрос сотруднику службы поддержки. Сначала два коротких вопроса (в любой момент можно написать «отмена»).",
)
add(
    "utter_ask_contact_email",
    "What e-mail address can the Service Desk reach you at?",
    "Uz kādu e-pasta adresi IT atbalsts var ar jums sazināties?",
    "По какому адресу электронной почты служба поддержки может с вами связаться?",
)
add(
    "utter_invalid_email",
    "That doesn't look like an e-mail address. Please type it like name@example.com.",
    "Tas neizskatās pēc e-pasta adreses. Lūdzu, ierakstiet to šādi: vards@example.com.",
    "Это не похоже на адрес электронной почты. Введите его в виде name@example.com.",
)
add(
    "utter_ask_priority",
    "How urgent is it?",
    "Cik steidzami tas ir?",
    "Насколько это срочно?",
    [
        ('/inform_priority{"priority": "low"}', "Low", "Zema", "Низкая"),
        ('/inform_priority{"priority": "normal"}', "Normal", "Normāla", "Обычная"),
        ('/inform_priority{"priority": "high"}', "High", "Augsta", "Высокая"),
        (
            '/inform_priority{"priority": "urgent"}',
            "Urgent — I can't work",
            "Steidzami — nevaru strādāt",
            "Срочно — не могу работать",
        ),
    ],
)
add(
    "utter_invalid_priority",
    "Please choose one: low, normal, high or urgent.",
    "Lūdzu, izvēlieties: zema, normāla, augsta vai steidzami.",
    "Пожалуйста, выберите: низкая, обычная, высокая или срочно.",
)
add(
    "utter_handoff_cancelled",
    "OK, I've cancelled that. I'm still here if you have another question.",
    "Labi, atcēlu. Ja jums ir vēl kāds jautājums, esmu šeit.",
    "Хорошо, отменил. Если появится вопрос, я здесь.",
)
add(
    "utter_handoff_queued",
    "Thanks! You're number {position} in the queue. An agent will join this chat shortly — you can keep writing here and they'll see it.",
    "Paldies! Jūs esat {position}. rindā. Darbinieks drīz pievienosies šai sarunai — varat turpināt rakstīt šeit, un viņš to redzēs.",
    "Спасибо! Вы {position}-й в очереди. Сотрудник скоро подключится к этому чату — можете продолжать писать здесь, он всё увидит.",
)
add(
    "utter_handoff_after_hours",
    "Thanks! No agent is online right now; the Service Desk opens again at {opening}. Your request is saved with this conversation — we'll reply here or by e-mail to {contact}.",
    "Paldies! Pašlaik neviens darbinieks nav tiešsaistē; IT atbalsts atkal strādās no {opening}. Jūsu pieprasījums ir saglabāts kopā ar šo sarunu — atbildēsim šeit vai uz e-pastu {contact}.",
    "Спасибо! Сейчас нет сотрудников в сети; служба поддержки снова работает с {opening}. Ваш запрос сохранён вместе с этим разговором — мы ответим здесь или по почте {contact}.",
)
add(
    "utter_handoff_no_agents",
    "Thanks! Your request is in the queue, but no agent is online at this moment. We'll reply here as soon as someone is available, or by e-mail to {contact}.",
    "Paldies! Jūsu pieprasījums ir rindā, taču šobrīd neviens darbinieks nav tiešsaistē. Atbildēsim šeit, tiklīdz kāds būs pieejams, vai uz e-pastu {contact}.",
    "Спасибо! Ваш запрос в очереди, но сейчас нет сотрудников в сети. Мы ответим здесь, как только кто-то освободится, или по почте {contact}.",
)
add(
    "utter_handoff_failed",
    "Sorry, I couldn't reach the Service Desk system just now. Please try again in a few minutes, or e-mail servicedesk@example.com.",
    "Atvainojiet, pašlaik nevarēju sazināties ar IT atbalsta sistēmu. Lūdzu, mēģiniet vēlreiz pēc dažām minūtēm vai rakstiet uz servicedesk@example.com.",
    "Извините, сейчас не удалось связаться с системой службы поддержки. Попробуйте через несколько минут или напишите на servicedesk@example.com.",
)
add(
    "utter_relay_failed",
    "Sorry, that message didn't reach the agent. Please send it again in a moment.",
    "Atvainojiet, ziņa nenonāca līdz darbiniekam. Lūdzu, nosūtiet to vēlreiz pēc brīža.",
    "Извините, сообщение не дошло до сотрудника. Отправьте его ещё раз чуть позже.",
)
add(
    "utter_agent_joined",
    "{agent_name} has joined the conversation.",
    "{agent_name} pievienojās sarunai.",
    "{agent_name} присоединился(ась) к разговору.",
)
add(
    "utter_agent_left",
    "{agent_name} has closed the conversation. I'm back if you need anything else.",
    "{agent_name} slēdza sarunu. Esmu atkal šeit, ja vēl kas nepieciešams.",
    "{agent_name} завершил(а) разговор. Я снова здесь, если нужно что-то ещё.",
)
add(
    "utter_ask_rating",
    "How would you rate the help you got, from 1 (poor) to 5 (excellent)?",
    "Kā jūs novērtētu saņemto palīdzību no 1 (slikti) līdz 5 (izcili)?",
    "Как вы оцените полученную помощь от 1 (плохо) до 5 (отлично)?",
    [(f'/rate{{"rating": "{i}"}}', str(i), str(i), str(i)) for i in range(1, 6)],
)
add(
    "utter_thanks_for_rating",
    "Thank you for your feedback!",
    "Paldies par jūsu vērtējumu!",
    "Спасибо за вашу оценку!",
)
add(
    "utter_language_switched",
    "Sure — let's continue in English.",
    "Protams — turpināsim latviešu valodā.",
    "Конечно — продолжим на русском.",
)


def buttons(spec, idx):
    return [{"title": b[idx], "payload": b[0]} for b in spec]


out = {"version": "3.1", "responses": {}}
for name, (en, lv, ru, spec) in R.items():
    variants = []
    for code, text, idx in (("lv", lv, 2), ("ru", ru, 3)):
        v = {"condition": [{"type": "slot", "name": "language", "value": code}], "text": text}
        if spec:
            v["buttons"] = buttons(spec, idx)
        variants.append(v)
    v = {"text": en}
    if spec:
        v["buttons"] = buttons(spec, 1)
    variants.append(v)
    out["responses"][name] = variants
header = "# Generated by scripts/gen_responses.py (one table, three languages): edit it there, then `make responses`.\n"
sys.stdout.write(header + yaml.safe_dump(out, allow_unicode=True, sort_keys=False, width=120))
