from evershell import create_app

app = create_app()
