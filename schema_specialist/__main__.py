from schema_specialist.cli import main

main()
